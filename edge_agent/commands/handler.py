"""Carries out a withdraw-consent or erase-subject command on the device.

Order matters: the template goes first (no new match can happen), then the
subject's queued events, then the acknowledgement is queued in the durable
outbox (it reaches the cloud even if the device restarts right after).
A command for another site, or one that does not decode, is logged and
counted, and (when it can be attributed) answered with status ``failed``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from edge_agent.commands.cards import register_card
from edge_agent.errors import EdgeError, InvalidInput, WireError
from edge_agent.gallery.model import GalleryData, Removal, remove_faces, remove_subject
from edge_agent.gallery.store import GalleryFile
from edge_agent.metrics import EdgeMetrics
from edge_agent.outbox import SqliteOutbox
from edge_agent.wire.commands import AckStatus, CommandAck, CommandType, EdgeCommand, decode_command
from edge_agent.wire.topics import DeviceIdentity

log = logging.getLogger(__name__)

#: A change of the gallery that says what it removed.
GalleryChange = Callable[[GalleryData], Removal]


@dataclass
class CommandHandler:
    identity: DeviceIdentity
    purpose: str
    gallery: GalleryFile
    outbox: SqliteOutbox
    metrics: EdgeMetrics
    #: called with the pseudonym after a removal (the agent reloads its matcher)
    on_removed: Callable[[str], None] = lambda pseudonym: None
    clock: Callable[[], float] = time.time

    def handle_payload(self, payload: bytes) -> CommandAck | None:
        try:
            command = decode_command(payload)
        except WireError as exc:
            self.metrics.commands.labels(type="unknown", status="invalid").inc()
            log.error("ignored a command that does not fit the contract (%s)", exc.reason)
            return None
        return self.handle(command)

    def handle(self, command: EdgeCommand) -> CommandAck:
        if (command.tenant, command.site) != (self.identity.tenant, self.identity.site):
            return self._ack(command, AckStatus.FAILED, Removal(0, False), 0, "not_this_site")
        if (
            command.type is CommandType.WITHDRAW_CONSENT
            and command.purpose is not None
            and command.purpose != self.purpose
        ):
            # This device processes for one purpose only; nothing it holds is affected.
            return self._ack(command, AckStatus.DONE, Removal(0, False), 0, "purpose_not_used")
        if command.type is CommandType.REGISTER_CARD:
            return self._register_card(command)
        change = remove_subject if command.type is CommandType.ERASE_SUBJECT else remove_faces
        return self._remove(command, lambda data: change(data, command.subject))

    def _register_card(self, command: EdgeCommand) -> CommandAck:
        """The face templates go and the card comes, in one gallery write; the subject's
        queued events go too, as on any withdrawal of the face consent."""
        card, now_ms = command.card, int(self.clock() * 1000)
        assert card is not None  # decode_command enforces it for register_card
        return self._remove(
            command,
            lambda data: register_card(data, command.subject, card, now_ms),
            refuse_invalid=True,
        )

    def _remove(
        self, command: EdgeCommand, change: GalleryChange, refuse_invalid: bool = False
    ) -> CommandAck:
        """One gallery write, then the subject's queued events go; acked either way.
        ``refuse_invalid``: a change the gallery refuses is acked as failed with why."""
        try:
            removal, _ = self.gallery.update(change)
        except InvalidInput as exc:
            if not refuse_invalid:
                raise
            return self._ack(command, AckStatus.FAILED, Removal(0, False), 0, str(exc)[:60])
        except EdgeError as exc:
            log.error("command %s: gallery update failed: %s", command.command_id, exc)
            return self._ack(command, AckStatus.FAILED, Removal(0, False), 0, "gallery_error")
        self.on_removed(command.subject)
        purged = self.outbox.purge_subject(command.subject)
        self.metrics.outbox_purged.labels(reason=command.type.value).inc(purged)
        return self._ack(command, AckStatus.DONE, removal, purged, None)

    def _ack(
        self,
        command: EdgeCommand,
        status: AckStatus,
        removal: Removal,
        purged: int,
        detail: str | None,
    ) -> CommandAck:
        ack = CommandAck(
            schema_version=1,
            command_id=command.command_id,
            type=command.type,
            tenant=self.identity.tenant,
            site=self.identity.site,
            gate=self.identity.gate,
            device=self.identity.device,
            subject=command.subject,
            status=status,
            templates_removed=removal.templates_removed,
            outbox_events_purged=purged,
            acked_at_ms=int(self.clock() * 1000),
            request_id=command.request_id,
            detail=detail,
        )
        self.outbox.append_ack(ack)
        self.metrics.commands.labels(type=command.type.value, status=status.value).inc()
        # The command id is not personal; the pseudonym stays out of the log.
        log.info(
            "command %s (%s): %s, %d templates removed, %d queued events purged",
            command.command_id,
            command.type.value,
            status.value,
            removal.templates_removed,
            purged,
        )
        return ack
