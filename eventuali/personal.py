"""Personal data in events: the ``Personal`` and ``Subject`` field markers, and what they declare.

An event class says which of its fields are personal data, and whose::

    from typing import Annotated
    from eventuali.personal import Personal, Subject

    class CustomerRegistered(Event):
        customer: Annotated[str, Subject]     # whose data; default: the aggregate id
        email: Annotated[str, Personal]
        name: Annotated[str, Personal]
        plan: str                             # not personal: stays readable

A store whose codec protects personal data (``encrypted_codec(keys)``, or
``EventCodec(personal=PersonalData(keys))``) encrypts those fields with a data
key of the subject; ``store.forget(subject)`` destroys that key, and from then
on the fields load as their *placeholder*:

- ``Personal(placeholder=value)`` when given;
- else :data:`FORGOTTEN` (the string ``"<forgotten>"``) when the field's type
  accepts it (``str`` fields);
- else ``None`` when the type accepts it (``int | None``);
- else the class is refused when first saved or loaded, naming the field.

This module has no dependency on ``cryptography``: event classes can be
declared (and read by tools) without it.  The encryption itself is in
:mod:`eventuali.security.personal_codec`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Annotated, Any, cast

from pydantic import TypeAdapter, ValidationError

from .errors import ConfigurationError

FORGOTTEN = "<forgotten>"
"""What a personal ``str`` field reads as once its subject is forgotten (or its key is gone)."""

_UNSET: Any = object()


class Personal:
    """Marks a field as personal data of the event's subject: ``Annotated[str, Personal]``.

    ``Personal(placeholder=...)`` sets what the field reads as after forgetting.
    """

    __slots__ = ("placeholder",)

    def __init__(self, *, placeholder: Any = _UNSET) -> None:
        self.placeholder = placeholder

    def __repr__(self) -> str:
        return "Personal()" if self.placeholder is _UNSET else f"Personal(placeholder={self.placeholder!r})"


class Subject:
    """Marks the field that names whose personal data the event holds: ``Annotated[str, Subject]``.

    Without one, the subject is the event's aggregate id.  An empty value
    (``None``) falls back to the aggregate id as well.
    """


@dataclass(frozen=True)
class PersonalSpec:
    """What an event class declares: its personal fields, their placeholders, its subject field."""

    fields: tuple[str, ...]
    placeholders: dict[str, Any]
    """Field -> the placeholder's JSON value (what is stored in the payload's clear part)."""
    subject_field: str | None

    def subject(self, data: dict[str, Any]) -> str | None:
        """The subject of an event given as its JSON dict (``None`` if it has none)."""
        value = data.get(self.subject_field) if self.subject_field else None
        return value if value else data.get("aggregate_id")


_specs: dict[type, PersonalSpec | None] = {}
_lock = threading.Lock()


def _is(marker: object, kind: type) -> bool:
    return marker is kind or isinstance(marker, kind)


def personal_spec(cls: type) -> PersonalSpec | None:
    """The :class:`PersonalSpec` of an event class, or ``None`` when it has no personal field.

    Raises ``ConfigurationError`` for a class whose declaration cannot work
    (two subject fields, a personal field no placeholder fits).
    """
    try:
        return _specs[cls]
    except KeyError:
        pass
    spec = _inspect(cls)
    with _lock:
        _specs[cls] = spec
    return spec


def _inspect(cls: type) -> PersonalSpec | None:
    fields = getattr(cls, "model_fields", {})
    personal: dict[str, Any] = {}
    subjects = []
    for name, info in fields.items():
        marks = [m for m in info.metadata if _is(m, Personal)]
        if any(_is(m, Subject) for m in info.metadata):
            subjects.append(name)
        if marks:
            personal[name] = _placeholder(cls, name, info, marks[-1])
    if len(subjects) > 1:
        raise ConfigurationError(
            f"event class {cls.__name__} marks {subjects} as Subject; an event has one subject "
            "(mark one field, or none to use the aggregate id)"
        )
    subject = subjects[0] if subjects else None
    if subject is not None and subject in personal:
        raise ConfigurationError(
            f"event class {cls.__name__} marks {subject!r} as both Subject and Personal; the "
            "subject names whose key encrypts the data, so it stays readable: use an opaque id"
        )
    if not personal:
        return None
    return PersonalSpec(tuple(personal), personal, subject)


def _placeholder(cls: type, name: str, info: Any, marker: Any) -> Any:
    extra = [m for m in info.metadata if not (_is(m, Personal) or _is(m, Subject))]
    # The field's own constraints (Field(min_length=...), validators) must accept it too.
    annotation: Any = cast(Any, Annotated)[tuple([info.annotation, *extra])] if extra else info.annotation
    adapter: TypeAdapter[Any] = TypeAdapter(annotation)
    explicit = not isinstance(marker, type) and marker.placeholder is not _UNSET
    candidates = [marker.placeholder] if explicit else [FORGOTTEN, None]
    for value in candidates:
        try:
            return adapter.dump_python(adapter.validate_python(value), mode="json")
        except (ValidationError, ValueError, TypeError):
            continue
    tried = repr(candidates[0]) if explicit else f"{FORGOTTEN!r} or None"
    raise ConfigurationError(
        f"personal field {cls.__name__}.{name} ({info.annotation!r}) cannot hold {tried}, which "
        "replaces it once its subject is forgotten; give a placeholder of its type: "
        f"{name}: Annotated[..., Personal(placeholder=...)]"
    )


PERSONAL_KEY = "$personal"
"""The payload key under which a concealed event keeps its personal fields' ciphertext."""
PERSONAL_MARK = b'"$personal"'
"""Its bytes in a payload's JSON (cannot occur inside a JSON string, where quotes are escaped)."""


class KeysNeeded(LookupError):
    """Decoding needs data keys that are not loaded yet (the store loads them and decodes again).

    Reaches user code only when a codec with personal data is used on its own:
    decode records through the store (``load``, ``read_all``, ...) instead.
    """

    def __init__(self, subjects: set[str]) -> None:
        self.subjects = subjects
        super().__init__(
            f"the data keys of subject(s) {sorted(subjects)} are not loaded; decode records "
            "through the store (store.load/read_all/load_events), which loads them"
        )
