"""Sagas (process managers): react to events, issue commands, compensate on failure.

- A :class:`Command` is a pydantic model naming an intent ("reserve 2 of
  sku-1 for order o-7"); a :class:`CommandBus` maps each command class to the
  handler that carries it out (load an aggregate, call it, save it).
- A :class:`Saga` is a :class:`~eventuali.projections.Projection`: the
  :class:`~eventuali.EventStreamer` delivers events to its
  ``handle_<event>`` methods, which run steps inside a saga transaction::

      async def handle_order_placed(self, event):
          async with self.transaction(event.aggregate_id,
                                      on_failure=RejectOrder(order_id=event.aggregate_id)) as tx:
              await tx.run(ReserveStock(...), compensate=ReleaseStock(...))
              await tx.run(ChargePayment(...), compensate=RefundPayment(...))
              await tx.run(ConfirmOrder(...))

  If a step (or anything else in the block) raises, the compensations of the
  steps already done run in reverse order, then the ``on_failure`` command;
  the block then ends normally with ``tx.failed`` set (a business failure is
  an outcome, not a crash).

Durability: every step, compensation and outcome is an event of the saga's
own aggregate (:class:`SagaState`, stream ``saga-<name>-<id>``), saved as it
happens.  When an event is delivered again (the streamer is at least once),
the steps already recorded are not re-sent - their stored results are
returned - and a saga that was compensating resumes its compensations.  A
command whose effect was stored but whose step record was not (a crash
between the two) is sent again: make command handlers idempotent, or guard
them with aggregate versions.  A compensation that raises propagates, so the
streamer's failure policy (retry, then park) applies and no step is lost.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from .aggregate import Aggregate
from .errors import ConfigurationError, EventualiError
from .event import Event
from .projections import Projection


class Command(BaseModel):
    """Base class of commands: plain pydantic models, serializable for the saga log."""

    model_config = ConfigDict(frozen=True)


Handler = Callable[..., Any]
OnFailure = Any  # a Command, or Callable[[str], Command]


class CommandBus:
    """Routes each command to its handler: ``handler(command, store)`` (sync or async)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._handlers: dict[type[Command], Handler] = {}
        self._by_name: dict[str, type[Command]] = {}

    def register(self, command_type: type[Command], handler: Handler) -> None:
        if not (isinstance(command_type, type) and issubclass(command_type, Command)):
            raise ConfigurationError(f"{command_type!r} is not an eventuali Command subclass")
        if command_type in self._handlers:
            raise ConfigurationError(f"command {command_type.__name__} already has a handler")
        self._handlers[command_type] = handler
        self._by_name[command_type.__name__] = command_type

    def handler(self, command_type: type[Command]) -> Callable[[Handler], Handler]:
        """Decorator form of :meth:`register`."""

        def deco(fn: Handler) -> Handler:
            self.register(command_type, fn)
            return fn

        return deco

    async def send(self, command: Command) -> Any:
        handler = self._handlers.get(type(command))
        if handler is None:
            raise ConfigurationError(
                f"no handler registered for command {type(command).__name__}; register one with "
                f"@bus.handler({type(command).__name__})"
            )
        result = handler(command, self.store)
        if inspect.isawaitable(result):
            result = await result
        return result

    def command_from(self, type_name: str, data: dict[str, Any]) -> Command:
        cls = self._by_name.get(type_name)
        if cls is None:
            raise ConfigurationError(
                f"the saga log names command {type_name!r}, which has no handler in this bus; "
                "register it before resuming the saga"
            )
        return cls.model_validate(data)


# --- the saga log ---------------------------------------------------------------------


class SagaStepCompleted(Event):
    __event_type__ = "eventuali.SagaStepCompleted"
    step: int
    command_type: str
    command: dict[str, Any]
    compensation_type: str | None = None
    compensation: dict[str, Any] | None = None
    result: Any = None


class SagaCompensating(Event):
    __event_type__ = "eventuali.SagaCompensating"
    reason: str


class SagaStepCompensated(Event):
    __event_type__ = "eventuali.SagaStepCompensated"
    step: int


class SagaCompleted(Event):
    __event_type__ = "eventuali.SagaCompleted"


class SagaFailed(Event):
    __event_type__ = "eventuali.SagaFailed"
    reason: str


class SagaState(Aggregate):
    """One saga instance: its steps and outcome, rebuilt from its log."""

    __aggregate_type__ = "Saga"
    status: str = "running"  # running | compensating | completed | failed
    steps: list[dict[str, Any]] = []
    reason: str | None = None

    def apply_event(self, event: Event) -> None:
        # Namespaced event types ("eventuali.Saga...") do not map to tidy method
        # names, so dispatch on the class.
        method = _SAGA_APPLY.get(type(event))
        if method is None:
            raise ConfigurationError(f"SagaState cannot apply {type(event).__name__}")
        method(self, event)

    def apply_saga_step_completed(self, e: SagaStepCompleted) -> None:
        self.steps.append({
            "step": e.step, "command_type": e.command_type, "compensation_type": e.compensation_type,
            "compensation": e.compensation, "result": e.result, "compensated": False,
        })

    def apply_saga_compensating(self, e: SagaCompensating) -> None:
        self.status, self.reason = "compensating", e.reason

    def apply_saga_step_compensated(self, e: SagaStepCompensated) -> None:
        self.steps[e.step]["compensated"] = True

    def apply_saga_completed(self, e: SagaCompleted) -> None:
        self.status = "completed"

    def apply_saga_failed(self, e: SagaFailed) -> None:
        self.status, self.reason = "failed", e.reason


_SAGA_APPLY: dict[type[Event], Callable[[SagaState, Any], None]] = {
    SagaStepCompleted: SagaState.apply_saga_step_completed,
    SagaCompensating: SagaState.apply_saga_compensating,
    SagaStepCompensated: SagaState.apply_saga_step_compensated,
    SagaCompleted: SagaState.apply_saga_completed,
    SagaFailed: SagaState.apply_saga_failed,
}


class SagaStepFailed(EventualiError):
    """A saga step's command raised; the transaction compensates and records the failure."""

    def __init__(self, step: int, command: Command | None, cause: BaseException | str) -> None:
        self.step, self.command, self.cause = step, command, cause
        what = type(command).__name__ if command is not None else "the saga"
        super().__init__(f"step {step} ({what}) failed: {cause}")


class SagaTransaction:
    """The steps of one saga instance; use through ``async with saga.transaction(id)``."""

    def __init__(self, saga: Saga, saga_id: str, on_failure: OnFailure | None) -> None:
        self.saga = saga
        self.saga_id = saga_id
        self.on_failure = on_failure
        self.state: SagaState | None = None
        self.failed = False
        self.error: BaseException | None = None
        self._next = 0

    @property
    def stream_id(self) -> str:
        return f"saga-{self.saga.saga_name()}-{self.saga_id}"

    async def __aenter__(self) -> SagaTransaction:
        store = self.saga.bus.store
        self.state = await _call(store.load, SagaState, self.stream_id) or SagaState(id=self.stream_id)
        self.failed = self.state.status == "failed"
        return self

    async def run(self, command: Command, *, compensate: Command | None = None) -> Any:
        """Send ``command`` (once per saga instance); on success remember ``compensate``."""
        state = self.state
        assert state is not None, "use 'async with saga.transaction(...) as tx'"
        i, self._next = self._next, self._next + 1
        if i < len(state.steps):  # done on an earlier delivery: do not send again
            return state.steps[i]["result"]
        if state.status != "running":
            raise SagaStepFailed(i, command, state.reason or state.status)
        try:
            result = await self.saga.bus.send(command)
        except Exception as exc:
            raise SagaStepFailed(i, command, exc) from exc
        state.apply(SagaStepCompleted(
            step=i, command_type=type(command).__name__, command=command.model_dump(mode="json"),
            compensation_type=type(compensate).__name__ if compensate is not None else None,
            compensation=compensate.model_dump(mode="json") if compensate is not None else None,
            result=_jsonable(result),
        ))
        await self._save()
        return result

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        state = self.state
        assert state is not None
        if exc is None:
            if state.status == "running":
                state.apply(SagaCompleted())
                await self._save()
            return False
        if not isinstance(exc, Exception):
            return False  # cancellation, interpreter exit: not a business failure
        reason = str(exc.cause) if isinstance(exc, SagaStepFailed) else f"{type(exc).__name__}: {exc}"
        if state.status == "failed":
            self.failed, self.error = True, exc
            return True
        if state.status == "running":
            state.apply(SagaCompensating(reason=reason))
            await self._save()
        bus = self.saga.bus
        for step in reversed(state.steps):
            if step["compensation_type"] is None or step["compensated"]:
                continue
            # A failing compensation propagates: the streamer retries or parks the
            # event, and the next delivery resumes from the first step not compensated.
            await bus.send(bus.command_from(step["compensation_type"], step["compensation"]))
            state.apply(SagaStepCompensated(step=step["step"]))
            await self._save()
        if self.on_failure is not None:
            cmd = self.on_failure
            if not isinstance(cmd, Command):
                cmd = cmd(state.reason or reason)  # a factory: build it from the reason
            await bus.send(cmd)
        state.apply(SagaFailed(reason=state.reason or reason))
        await self._save()
        self.failed, self.error = True, exc
        return True

    async def _save(self) -> None:
        await _call(self.saga.bus.store.save, self.state)


class Saga(Projection):
    """Base class of sagas; see the module docstring.

    Give it a :class:`CommandBus` (``super().__init__(bus)`` or set ``self.bus``).
    Its ``name`` (default: the class name) is both its checkpoint and the
    prefix of its instances' streams.
    """

    def __init__(self, bus: CommandBus) -> None:
        self.bus = bus

    def saga_name(self) -> str:
        return self.projection_name()

    def transaction(self, saga_id: str, *, on_failure: OnFailure | None = None) -> SagaTransaction:
        """The saga instance ``saga_id``; ``on_failure`` is a command sent after the
        compensations, or a function that builds it from the failure reason (a str)."""
        if getattr(self, "bus", None) is None:
            raise ConfigurationError(
                f"{type(self).__name__} has no command bus; call super().__init__(bus) in its __init__"
            )
        return SagaTransaction(self, saga_id, on_failure)

    async def state_of(self, saga_id: str) -> SagaState | None:
        """The stored state of one saga instance (steps, status, reason)."""
        return await _call(self.bus.store.load, SagaState, f"saga-{self.saga_name()}-{saga_id}")

    async def reset(self) -> None:
        """Sagas keep their state in the store; a rebuild replays against it idempotently."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if value is None or isinstance(value, (str, int, float, bool, list, dict)):
        return value
    return str(value)


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """Call a store method of an async or a sync store."""
    result = fn(*args)
    if isinstance(result, Awaitable):
        result = await result
    return result
