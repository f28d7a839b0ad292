"""The entry point's one handler: any error becomes one ``Error: …`` line and an exit code.

A user mistake, a refused value or a broker that is down is never shown as a
traceback; ``facegate --debug …`` (or ``FACEGATE_DEBUG=1``) shows it. Exit
codes: 1 an error, 2 a usage error (click's), 69 a broker or service that
cannot be reached or a ``retriable`` error (retry once it is up), 70 an
unexpected error (a bug: the line says so).
"""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import click
from pydantic import ValidationError

from edge_agent.errors import FacegateError
from stream_processor.errors import BrokerError

EXIT_ERROR = 1
EXIT_UNAVAILABLE = 69
EXIT_INTERNAL = 70

STACK_HINT = "is the stack up? (facegate stack up)"

#: Client exceptions that mean "the broker cannot be reached", by module and
#: name so that a gate device without the Kafka clients can still load this.
_BROKER_EXCEPTIONS = frozenset(
    {
        ("kafka.errors", "NoBrokersAvailable"),
        ("kafka.errors", "KafkaConnectionError"),
        ("kafka.errors", "NodeNotReadyError"),
        ("aiokafka.errors", "KafkaConnectionError"),
        ("aiokafka.errors", "NoBrokersAvailable"),
        ("cimpl", "KafkaException"),
        ("confluent_kafka.cimpl", "KafkaException"),
        ("psycopg", "OperationalError"),
    }
)
#: The roots of the Kafka clients' other errors (a refusal, not an outage).
_KAFKA_ERRORS = frozenset({("kafka.errors", "KafkaError"), ("aiokafka.errors", "KafkaError")})
#: OS errors of a network connection (a file error is reported as itself).
_NETWORK_ERRORS: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, socket.gaierror)

#: Loggers of the broker clients: they log every failed connection attempt,
#: tens of lines before the one that matters. Shown with ``--debug``.
NOISY_LOGGERS = ("kafka", "aiokafka", "faust", "mode", "confluent_kafka", "paho")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_broker_client_error(exc: BaseException) -> bool:
    if isinstance(exc, _NETWORK_ERRORS):
        return True
    return any((k.__module__, k.__name__) in _BROKER_EXCEPTIONS for k in type(exc).__mro__)


def one_line(text: str) -> str:
    """Collapse a multi-line message (pydantic's, a YAML parser's) into one line."""
    return "; ".join(part.strip() for part in text.splitlines() if part.strip())


def validation_line(exc: ValidationError) -> str:
    """``Model: field: why; field: why`` — what pydantic says, on one line."""
    from stream_processor.cli.environment import variable_for

    parts = []
    for err in exc.errors():
        variable = variable_for(exc.title, err["loc"])
        where = variable or ".".join(str(p) for p in err["loc"])
        got = f" (got {err['input']!r})" if variable and isinstance(err["input"], str) else ""
        parts.append(f"{where}: {err['msg']}{got}" if where else err["msg"])
    return f"invalid {exc.title}: " + "; ".join(parts)


def translate(exc: BaseException) -> tuple[str, int]:
    """The line to print (without ``Error: ``) and the exit code for ``exc``."""
    if isinstance(exc, BrokerError):
        message = one_line(str(exc)) or type(exc).__name__
        if STACK_HINT not in message:
            message = f"{message}; {STACK_HINT}"
        return message, EXIT_UNAVAILABLE
    if isinstance(exc, FacegateError):
        # Retriable (a gate's broker, a store that is down, a broker not ready yet):
        # the same command may succeed later.
        code = EXIT_UNAVAILABLE if exc.retriable else EXIT_ERROR
        return one_line(str(exc)) or type(exc).__name__, code
    if isinstance(exc, ValidationError):
        return validation_line(exc), EXIT_ERROR
    for link in _chain(exc):
        if _is_broker_client_error(link):
            detail = one_line(str(link)) or type(link).__name__
            what = "the database" if type(link).__module__.startswith("psycopg") else "a broker"
            return f"cannot reach {what} ({detail}); {STACK_HINT}", EXIT_UNAVAILABLE
    for link in _chain(exc):
        if any((k.__module__, k.__name__) in _KAFKA_ERRORS for k in type(link).__mro__):
            detail = one_line(str(link)) or type(link).__name__
            retriable = bool(getattr(link, "retriable", False))
            return f"Kafka refused: {detail}", EXIT_UNAVAILABLE if retriable else EXIT_ERROR
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.strerror or type(exc).__name__}: {exc.filename}", EXIT_ERROR
    detail = one_line(str(exc))
    return (
        f"unexpected {type(exc).__name__}{': ' + detail if detail else ''} "
        "(a bug: run again with --debug for the traceback and report it)",
        EXIT_INTERNAL,
    )


def quiet_client_loggers(debug: bool) -> None:
    """Broker clients log only errors unless ``debug``; their connection retries are noise."""
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.CRITICAL)


def run(main: Callable[[], object], debug: Callable[[], bool]) -> NoReturn:
    """Call ``main`` (a click command, ``standalone_mode=False``); what escapes is one line.

    ``debug()`` is asked only after a failure, once the options have been parsed.
    """
    try:
        result = main()
    except click.UsageError as exc:
        exc.message = one_line(exc.message)
        exc.show()
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"Error: {one_line(exc.format_message())}", err=True)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, EOFError, click.Abort):
        click.echo("Error: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if debug():
            raise
        message, code = translate(exc)
        click.echo(f"Error: {message}", err=True)
        sys.exit(code)
    sys.exit(result if isinstance(result, int) else 0)


def worker_log_level() -> str:
    """The level a Faust worker logs at (it sets the root logger's level itself):
    FACEGATE_LOG_LEVEL, else WARNING; DEBUG when the root command was given -v/--debug
    (its root logger is at DEBUG)."""
    from stream_processor.runtime.settings import LogSettings

    if logging.getLogger().getEffectiveLevel() <= logging.DEBUG:
        return "DEBUG"
    return LogSettings().level("WARNING")


def run_faust_worker(worker: Any) -> NoReturn:
    """Run a Faust worker; a start-up failure leaves as its exception, not a bare exit 1.

    mode's ``execute_from_commandline`` logs the error (silenced without
    ``--debug``) and raises ``SystemExit(1)`` while handling it; the exception
    it was handling is what the user needs to read.
    """
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        cause = exc.__context__
        if exc.code not in (0, None) and isinstance(cause, Exception):
            sys.unraisablehook = _ignore_dead_thread_loops(sys.unraisablehook)
            raise cause from None
        raise
    raise SystemExit(0)


def _ignore_dead_thread_loops(
    previous: Callable[[Any], object],
) -> Callable[[Any], object]:
    """An unraisable hook that drops a failed worker's thread-loop finalizers.

    After a failed start, mode's consumer thread leaves its own event loop unclosed
    with its self-pipe already gone; the loop's ``__del__`` at exit then prints a
    ValueError traceback under the one ``Error:`` line. Nothing is lost by dropping
    it (the process is exiting); every other unraisable still reaches ``previous``.
    """

    def hook(unraisable: Any) -> None:
        where = getattr(unraisable.object, "__qualname__", "")
        if where == "BaseEventLoop.__del__" and isinstance(unraisable.exc_value, ValueError):
            return
        previous(unraisable)

    return hook
