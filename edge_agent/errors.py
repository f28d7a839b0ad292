"""The one exception root of facegate, shared by the gate device and the cloud.

It lives on the device side because ``edge_agent`` imports nothing from
``stream_processor``; the cloud's errors (``stream_processor.errors``) derive
from it. The one entry point, ``facegate`` (``facegate edge …`` on a gate
device; ``stream_processor/cli/handler.py``), turns any error into one
``Error: …`` line and a non-zero exit; ``--debug`` shows the traceback. The
standalone verifier (``docs/verifier/``) does the same with no facegate code.

FacegateError                  root of every error facegate raises on purpose
├── InvalidInput (ValueError)  a value from an option, a file or the environment is refused
├── EdgeError                  the gate device (edge_agent)
│   ├── ConfigError            bad or missing configuration (not retriable)
│   ├── WireError              a payload that does not fit the wire contract
│   │   └── PatternError       a string field does not match its pattern (wire.strict)
│   ├── OutboxError            the durable outbox cannot take or give events
│   │   └── OutboxFull         the configured ceiling is reached (retriable)
│   ├── PublishError           the MQTT broker refused or is unreachable (retriable)
│   ├── AssetError             a model or test asset could not be fetched/converted/verified
│   ├── ModelError             a model file is missing or behaves wrongly
│   ├── GalleryError           the encrypted gallery cannot be read or written
│   │   ├── GalleryKeyError    missing or wrong gallery key (fails loudly, never guesses)
│   │   └── BundleError        a bundle not the office's, older, or another site's (gallery.bundle)
│   ├── PhotoError             an enrolment photo is unusable (gallery.enroll)
│   └── ConsentRequired        enrolment without the consent reference it needs
└── the cloud (stream_processor.errors and the modules named)
    ├── ConfigError            invalid settings (not retriable)
    ├── StackError             a local broker could not be installed/started/stopped
    │   └── NotReady           a broker did not become ready in time (retriable)
    ├── BrokerError            Kafka or MQTT refused or is unreachable (retriable)
    │   ├── ProtocolError      the MQTT peer sent bytes that are not MQTT v5 (bridge.mqtt_props)
    │   ├── ConnectRefused     the broker refused the bridge's CONNECT (bridge.mqtt_link)
    │   └── ConnectionLost     the bridge's MQTT connection closed or broke (bridge.mqtt_link)
    ├── StoreError             the event store failed
    │   ├── StoreDataError     the store refused these rows; retrying them fails again (store.base)
    │   ├── StoreUnavailable   the store cannot write now (retriable; store.base)
    │   └── StoreWriterFailed  the processor's store writer stopped (processor.writer)
    ├── KeycardError           a key-card request is invalid or in the wrong state (rights.keycards)
    ├── RightsDbUnavailable    the shared rights database is unreachable (retriable; rights.db_pg)
    ├── AuditError             the audit log, its key or checkpoints (audit.errors)
    │   ├── IdentifierInAudit  an entry would carry an identifier in the clear
    │   ├── KeyFileError       the operator key file is missing or not an Ed25519 key
    │   ├── NotCanonical (TypeError)  a value has no canonical JSON form
    │   ├── NoteError          a checkpoint note or a verifier key is malformed (audit.note)
    │   └── WitnessRefused     a witness refused a checkpoint (audit.cosign)
    ├── LogUnavailable         the witness cannot read the operator's log (witness.client)
    ├── TokenError             a console token cannot be created or revoked (web.tokens)
    ├── ApiError               an API request refused with an HTTP status (web.errors)
    └── AssetError             the console's browser libraries are missing (web.assets)

A ``retriable`` error (the class attribute) may succeed later unchanged: the
entry points exit 69 for it, 1 for the others.

Validators inside pydantic models and msgspec ``__post_init__`` raise plain
``ValueError`` because the library wraps it into its own ``ValidationError``;
the loaders turn that into a ``ConfigError``, and the entry points print any
that escapes as one line too.
"""

from __future__ import annotations


class FacegateError(Exception):
    """Root of every error facegate raises on purpose, on the device and in the cloud."""

    retriable: bool = False


class InvalidInput(FacegateError, ValueError):
    """A value given on the command line, in a file or in the environment is refused.

    Also a ``ValueError``, so that a validator may raise it and callers that
    test for ``ValueError`` keep working.
    """


class EdgeError(FacegateError):
    """Root of every error the edge agent raises on purpose."""


class ConfigError(EdgeError):
    """Configuration is invalid; the message says which field and why."""


class WireError(EdgeError):
    """A payload does not match the wire contract."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class OutboxError(EdgeError):
    """The outbox database failed."""


class OutboxFull(OutboxError):
    """The outbox reached its ceiling; the event was not accepted."""

    retriable = True


class PublishError(EdgeError):
    """The broker refused a publish or a connection."""

    retriable = True


class AssetError(EdgeError):
    """A model or test asset could not be fetched, converted or verified."""


class ModelError(EdgeError):
    """A model file is missing, malformed, or gives outputs of the wrong shape."""


class GalleryError(EdgeError):
    """The encrypted gallery cannot be read or written."""


class GalleryKeyError(GalleryError):
    """The gallery key is missing, malformed, or not the key the gallery was sealed with."""


class ConsentRequired(EdgeError):
    """Enrollment refused: a consent (or guardian-consent) reference is missing."""
