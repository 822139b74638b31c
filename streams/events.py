"""Typed events: one frozen dataclass per Avro record, bound to its schema by full name.

Agents receive these, never raw dicts. The field names mirror the .avsc files; a test keeps
the two in step.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from streams.topics import Family


@dataclass(frozen=True, slots=True)
class Envelope:
    id: uuid.UUID
    type: str
    created_at: datetime
    attempts: int = 0
    metadata: dict[str, str] = field(default_factory=dict)

    @classmethod
    def new(cls, event_type: str, metadata: dict[str, str] | None = None) -> Envelope:
        """A fresh envelope, its time cut to the milliseconds that timestamp-millis carries."""
        now = datetime.now(timezone.utc)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        return cls(uuid.uuid4(), event_type, now, 0, dict(metadata or {}))

    def created_day(self) -> str:
        """The UTC calendar day the event was created, as YYYY-MM-DD."""
        return self.created_at.astimezone(timezone.utc).date().isoformat()


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event.

    ``schema`` is the Avro full name of its record, ``family`` names its topic, and ``key_field``
    the entity id it is keyed (and so partitioned) by.
    """

    schema: ClassVar[str]
    family: ClassVar[Family]
    key_field: ClassVar[str] = "user_id"
    envelope: Envelope

    @classmethod
    def new(cls, metadata: Mapping[str, str] | None = None, **fields: Any) -> Self:
        """A new event of this type, with a fresh envelope."""
        return cls(Envelope.new(cls.__name__, dict(metadata or {})), **fields)

    @property
    def id(self) -> uuid.UUID:
        return self.envelope.id

    def key(self) -> str:
        return getattr(self, self.key_field)

    def to_avro(self) -> dict[str, Any]:
        record = {f.name: getattr(self, f.name) for f in fields(self)}
        record["envelope"] = {f.name: getattr(self.envelope, f.name) for f in fields(Envelope)}
        return record

    @classmethod
    def from_avro(cls, record: dict[str, Any]) -> Event:
        envelope = Envelope(**record.pop("envelope"))
        return cls(envelope=envelope, **record)


@dataclass(frozen=True, slots=True)
class UserCreated(Event):
    schema: ClassVar[str] = "streams.users.UserCreated"
    family: ClassVar[Family] = "user"
    user_id: str
    email: str
    username: str
    full_name: str | None = None



@dataclass(frozen=True, slots=True)
class UserUpdated(Event):
    schema: ClassVar[str] = "streams.users.UserUpdated"
    family: ClassVar[Family] = "user"
    user_id: str
    email: str | None = None
    username: str | None = None
    full_name: str | None = None
    bio: str | None = None



@dataclass(frozen=True, slots=True)
class FollowChange(Event):
    """``user_id`` starts or stops following ``followed_id``; keyed by the follower."""

    family: ClassVar[Family] = "user"
    user_id: str
    followed_id: str


@dataclass(frozen=True, slots=True)
class UserFollowed(FollowChange):
    schema: ClassVar[str] = "streams.users.UserFollowed"


@dataclass(frozen=True, slots=True)
class UserUnfollowed(FollowChange):
    schema: ClassVar[str] = "streams.users.UserUnfollowed"


@dataclass(frozen=True, slots=True)
class EmailNotification(Event):
    schema: ClassVar[str] = "streams.emails.EmailNotification"
    family: ClassVar[Family] = "email"
    user_id: str
    template: str
    data: dict[str, str] = field(default_factory=dict)



@dataclass(frozen=True, slots=True)
class PostCreated(Event):
    schema: ClassVar[str] = "streams.posts.PostCreated"
    family: ClassVar[Family] = "post"
    key_field: ClassVar[str] = "post_id"
    post_id: str
    author_id: str
    content: str



@dataclass(frozen=True, slots=True)
class PostActivity(Event):
    """Something a user did to a post; keyed by the post, like the engagement statistics."""

    family: ClassVar[Family] = "post"
    key_field: ClassVar[str] = "post_id"
    post_id: str
    user_id: str



@dataclass(frozen=True, slots=True)
class PostViewed(PostActivity):
    schema: ClassVar[str] = "streams.posts.PostViewed"


@dataclass(frozen=True, slots=True)
class PostLiked(PostActivity):
    schema: ClassVar[str] = "streams.posts.PostLiked"


@dataclass(frozen=True, slots=True)
class PostCommented(PostActivity):
    schema: ClassVar[str] = "streams.posts.PostCommented"
    comment_id: str


@dataclass(frozen=True, slots=True)
class PostShared(PostActivity):
    schema: ClassVar[str] = "streams.posts.PostShared"


@dataclass(frozen=True, slots=True)
class DataExport(Event):
    schema: ClassVar[str] = "streams.exports.DataExport"
    family: ClassVar[Family] = "export"
    user_id: str
    format: str
    filters: dict[str, Any] = field(default_factory=lambda: {"posts_limit": 100})



@dataclass(frozen=True, slots=True)
class UndecodableEvent:
    """Bytes that could not be decoded; kept whole so nothing is lost on the way to a dead letter."""

    payload: bytes
    reason: str


EVENT_TYPES: dict[str, type[Event]] = {
    cls.schema: cls
    for cls in (
        UserCreated, UserUpdated, UserFollowed, UserUnfollowed, PostCreated, PostViewed, PostLiked, PostCommented, PostShared, EmailNotification,
        DataExport,
    )
}

#: publish_post_activity's names for the activity events.
POST_ACTIVITIES: dict[str, type[PostActivity]] = {
    "viewed": PostViewed, "liked": PostLiked, "commented": PostCommented, "shared": PostShared,
}

