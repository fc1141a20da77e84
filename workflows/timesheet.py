"""One contract-week, from the edit cutoff to the money released: ``timesheet-{contract_id}-{YYYY-MM-DD}``.

edit cutoff → freeze (snapshot) → review window → approved / auto-approved / disputed → charge →
release after the security period, or a guarantee payout when the charge fails.

Hazards:
- Updates and the main coroutine interleave at every ``await``. Validators read state only; handlers
  change it synchronously before their first await, so the main loop never sees half an action.
- Every decision about time uses ``workflow.now()``: an approval and the deadline "in the same moment"
  are ordered by the workflow's own clock, and exactly one of them wins.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.activities import (
        CHARGE_CLIENT,
        COLLECT_WEEK,
        FREEZE_TIMESHEET,
        GUARANTEE_PAYOUT,
        NOTIFY,
        RECORD_TIMESHEET_STATUS,
        RELEASE_FUNDS,
        SECURE_WEEK,
        ActivitySpec,
    )
    from domain.calendar import WEEK
    from domain.errors import DomainError, ErrorCode
    from domain.messages import (
        ActionResult,
        Approve,
        ChargeInput,
        CollectInput,
        Collection,
        DecidePayout,
        Dispute,
        DisputeState,
        ExtendDeadline,
        FreezeInput,
        Notify,
        PayoutInput,
        PayoutReview,
        ReleaseInput,
        Resolve,
        Respond,
        SecureInput,
        Security,
        SnapshotResult,
        StatusRecord,
        TimesheetInput,
        TimesheetStatus,
        TimesheetView,
        WeekSettled,
    )
    from domain.money import amount_for_minutes
    from domain.settlement import check_disputable, check_resolutions, settle, spread_offset
    from domain.text import MAX_REASON_CHARS, check_text
    from workflows.attributes import DISPUTE_OPEN, TIMESHEET_STATUS
    from workflows.calls import call
    from workflows.refusals import reject

In = TypeVar("In")
Out = TypeVar("Out")


def timesheet_workflow_id(contract_id: str, week_start: datetime) -> str:
    return f"timesheet-{contract_id}-{week_start:%Y-%m-%d}"


def check_words(value: str, what: str, *, required: bool, code: ErrorCode) -> None:
    """A reason or note by the rules of every free text (domain.text): refused before it is written."""
    try:
        cleaned = check_text(value, what=what, max_chars=MAX_REASON_CHARS)
    except DomainError as error:
        raise reject(error.message, error.code) from None
    if required and not cleaned:
        raise reject(f"give a {what}: it is required", code)


@workflow.defn
class TimesheetWorkflow:
    @workflow.init
    def __init__(self, request: TimesheetInput) -> None:
        self.input = request
        self.activity_timeout = timedelta(seconds=request.activity_timeout_s)
        policy = request.policy
        week = request.week_start
        self.status: TimesheetStatus = "open"
        self.edit_cutoff = week + WEEK + timedelta(seconds=policy.edit_cutoff_after_week_s)
        self.review_deadline = week + WEEK + timedelta(seconds=policy.review_deadline_after_week_s)
        self.snapshot: SnapshotResult | None = None
        self.decision: TimesheetStatus | None = None
        self.dispute: DisputeState | None = None
        self.deadline_changed = 0
        self.owed_cents: int | None = None
        self.charged_cents = 0
        self.guarantee_paid_cents = 0
        self.released_cents = 0
        self.history: list[str] = []
        self.secured: Security | None = None  # shape 3
        self.payout_review: PayoutReview | None = None

    # --- the week ------------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, request: TimesheetInput) -> TimesheetView:
        # Shape 3 secures the week before any of it is worked: the most it can bill (rate times the weekly
        # limit) is held on the client's balance, or reserved on the client's credit line.
        secured = request.shape >= 3
        if secured:
            most = amount_for_minutes(request.weekly_limit_hours * 60, request.rate_cents)
            await self._secure(most, "start")
        spread = timedelta(seconds=spread_offset(request.contract_id, request.policy.spread_s))
        await self._sleep_until(self.edit_cutoff + spread)
        self.snapshot = await self._activity(
            FREEZE_TIMESHEET,
            FreezeInput(
                contract_id=request.contract_id,
                week_start=request.week_start,
                weekly_limit_hours=request.weekly_limit_hours,
            ),
        )
        timesheet = self.snapshot.timesheet
        if timesheet.amount_cents == 0:
            # Nothing billed: the snapshot stands as the record; no review, no charge, no payout.
            self.owed_cents = 0
            if secured:
                await self._collect(0, 0)  # the hold goes back to the client's balance
            await self._set_status("settled", "the week had no billable time")
            return await self._finish()
        if secured:  # the client may have funded the balance during the week
            await self._secure(timesheet.amount_cents, "freeze")

        await self._set_status("submitted", f"submitted: {timesheet.billable_minutes} billable minutes")
        await self._notify(
            "timesheet_submitted",
            [request.client_id, request.provider_id],
            deadline=self.review_deadline.isoformat(),
        )
        await self._review()

        refunded: set[str] = set()
        if self.decision == "disputed":
            refunded = await self._settle_dispute()
        else:
            assert self.decision in ("approved", "auto_approved")
        settlement = settle(timesheet, refunded)
        self.owed_cents = settlement.owed_cents
        if settlement.owed_cents == 0:
            if secured:
                await self._collect(0, 0)
            await self._set_status("settled", "nothing owed after the dispute")
            return await self._finish()

        # The herd of Saturday 00:00 charges, spread; no user deadline moves. Weeks started before the
        # patch slept even for a zero spread (a timer that cost a workflow task and ~1 s); they replay as
        # they ran. Shape 2 (TimesheetInput.shape) never sleeps for zero and asks no patch.
        if spread > timedelta(0) or (request.shape < 2 and not workflow.patched("no-timer-for-zero-spread")):
            await workflow.sleep(spread)
        if secured:
            return await self._collect_and_release(settlement.owed_cents, settlement.guaranteed_cents)
        charge = await self._activity(
            CHARGE_CLIENT,
            ChargeInput(
                key=f"charge:{request.contract_id}:{request.week_start:%Y-%m-%d}",
                contract_id=request.contract_id,
                client_id=request.client_id,
                provider_id=request.provider_id,
                week_start=request.week_start,
                amount_cents=settlement.owed_cents,
                currency=timesheet.currency,
            ),
        )
        if charge.ok:
            self.charged_cents = settlement.owed_cents
            await self._set_status("charged", f"client charged {settlement.owed_cents} cents")
            held = self.charged_cents
        else:
            await self._notify(
                "charge_failed", [request.client_id, request.provider_id], reason=charge.reason
            )
            if settlement.guaranteed_cents > 0:
                payout = await self._activity(
                    GUARANTEE_PAYOUT,
                    PayoutInput(
                        contract_id=request.contract_id,
                        client_id=request.client_id,
                        provider_id=request.provider_id,
                        week_start=request.week_start,
                        amount_cents=settlement.guaranteed_cents,
                        currency=timesheet.currency,
                    ),
                )
                self.guarantee_paid_cents = payout.amount_cents
                await self._set_status(
                    "paid_by_guarantee", f"charge failed; guarantee fund paid {payout.amount_cents} cents"
                )
                await self._notify("guarantee_payout", [request.provider_id, request.client_id])
                held = payout.amount_cents
            else:
                await self._set_status("unpaid", "charge failed and no time was guaranteed")
                return await self._finish()

        await workflow.sleep(timedelta(seconds=request.policy.security_period_s))
        released = await self._activity(
            RELEASE_FUNDS,
            ReleaseInput(
                key=f"release:{request.contract_id}:{request.week_start:%Y-%m-%d}",
                contract_id=request.contract_id,
                provider_id=request.provider_id,
                week_start=request.week_start,
                amount_cents=held,
                currency=timesheet.currency,
            ),
        )
        self.released_cents = released.amount_cents
        await self._notify("funds_released", [request.provider_id])
        await self._set_status("settled", f"released {released.amount_cents} cents to the provider")
        return await self._finish()

    # --- shape 3: what secures the week, collecting it, and the guarantee bounded by it ------------------

    async def _secure(self, target_cents: int, stage: Literal["start", "freeze"]) -> None:
        request = self.input
        self.secured = await self._activity(
            SECURE_WEEK,
            SecureInput(
                contract_id=request.contract_id, client_id=request.client_id, week_start=request.week_start,
                currency=request.currency, target_cents=target_cents, stage=stage,
            ),
        )  # fmt: skip

    async def _collect(self, owed_cents: int, guaranteed_cents: int) -> Collection:
        request = self.input
        return await self._activity(
            COLLECT_WEEK,
            CollectInput(
                contract_id=request.contract_id, client_id=request.client_id, provider_id=request.provider_id,
                week_start=request.week_start, currency=request.currency, owed_cents=owed_cents,
                guaranteed_cents=guaranteed_cents,
            ),
        )  # fmt: skip

    async def _collect_and_release(self, owed_cents: int, guaranteed_cents: int) -> TimesheetView:
        """The hold pays first, then the client's balance; if that fails, the guarantee pays the guaranteed
        time the hold did not cover, never more than the credit the week reserved, and a payout above
        the deployment's review threshold waits for support. What was collected or paid is released to
        the provider after the security period."""
        request = self.input
        collection = await self._collect(owed_cents, guaranteed_cents)
        self.charged_cents = held = collection.collected_cents
        if not collection.rest_failed:
            await self._set_status("charged", f"client charged {held} cents")
        else:
            await self._notify(
                "charge_failed", [request.client_id, request.provider_id], reason=collection.reason
            )
            payout = collection.guarantee_cap_cents
            threshold = request.policy.guarantee_review_cents
            if payout > 0 and 0 < threshold < payout:
                payout = await self._payout_review(payout)
            if payout > 0:
                paid = await self._activity(
                    GUARANTEE_PAYOUT,
                    PayoutInput(
                        contract_id=request.contract_id, client_id=request.client_id,
                        provider_id=request.provider_id, week_start=request.week_start, amount_cents=payout,
                        currency=request.currency,
                    ),
                )  # fmt: skip
                self.guarantee_paid_cents = paid.amount_cents
                held += paid.amount_cents
                await self._set_status(
                    "paid_by_guarantee", f"charge failed; guarantee fund paid {paid.amount_cents} cents"
                )
                await self._notify("guarantee_payout", [request.provider_id, request.client_id])
            elif held > 0:
                await self._set_status(
                    "charged", f"client charged {held} of {owed_cents} cents; the rest was not secured"
                )
            else:
                await self._set_status("unpaid", "charge failed and nothing was secured for the week")
                return await self._finish()
        await workflow.sleep(timedelta(seconds=request.policy.security_period_s))
        released = await self._activity(
            RELEASE_FUNDS,
            ReleaseInput(
                key=f"release:{request.contract_id}:{request.week_start:%Y-%m-%d}", contract_id=request.contract_id,
                provider_id=request.provider_id, week_start=request.week_start, amount_cents=held,
                currency=request.currency,
            ),
        )  # fmt: skip
        self.released_cents = released.amount_cents
        await self._notify("funds_released", [request.provider_id])
        await self._set_status("settled", f"released {released.amount_cents} cents to the provider")
        return await self._finish()

    async def _payout_review(self, amount_cents: int) -> int:
        """Support approves or refuses the payout before its deadline; silence pays it."""
        deadline = workflow.now() + timedelta(seconds=self.input.policy.payout_review_s)
        review = self.payout_review = PayoutReview(amount_cents=amount_cents, deadline=deadline)
        await self._set_status(
            "payout_review", f"a guarantee payout of {amount_cents} cents waits for support"
        )
        try:
            await workflow.wait_condition(
                lambda: review.decision is not None, timeout=max(deadline - workflow.now(), timedelta(0))
            )
        except TimeoutError:
            review.decision = "deadline"
            self.history.append(f"{workflow.now().isoformat()} payout review deadline passed: paid")
        return 0 if review.decision == "refused" else amount_cents

    @workflow.update
    def decide_payout(self, request: DecidePayout) -> ActionResult:
        review = self.payout_review
        assert review is not None
        review.decision = "approved" if request.approve else "refused"
        review.reason = request.reason.strip()
        review.decided_by = request.actor.user_id
        self.history.append(
            f"{workflow.now().isoformat()} support {review.decision} the payout: {review.reason}"
        )
        return ActionResult(status=self.status, message=f"payout {review.decision}")

    @decide_payout.validator
    def _check_decide_payout(self, request: DecidePayout) -> None:
        if request.actor.role != "support":
            raise reject("only support staff decide guarantee payouts", "role_required")
        review = self.payout_review
        if review is None or self.status != "payout_review" or review.decision is not None:
            raise reject(
                f"no guarantee payout waits for a decision (the timesheet is {self.status})", "not_in_review"
            )
        check_words(request.reason, "reason for the decision", required=True, code="invalid_input")
        if workflow.now() >= review.deadline:
            raise reject("the payout review window closed: the payout was made", "review_window_closed")

    async def _review(self) -> None:
        """Until the review deadline (which support may extend): approve, dispute, or silence."""
        reminded = False
        while self.decision is None:
            now = workflow.now()
            if now >= self.review_deadline:
                self.decision = "auto_approved"
                await self._set_status("auto_approved", "review deadline passed without a dispute")
                return
            remind_at = self.review_deadline - timedelta(seconds=self.input.policy.review_reminder_s)
            target = remind_at if (not reminded and now < remind_at) else self.review_deadline
            seen = self.deadline_changed
            try:
                await workflow.wait_condition(
                    self._decided_or_moved(seen),
                    timeout=max(target - now, timedelta(milliseconds=1)),
                )
            except TimeoutError:
                if target == remind_at and not reminded:
                    reminded = True
                    await self._notify(
                        "review_closing", [self.input.client_id], deadline=self.review_deadline.isoformat()
                    )
        if self.decision in ("approved", "disputed"):
            await self._set_status(self.decision, self.history[-1] if self.history else "")

    async def _settle_dispute(self) -> set[str]:
        """Provider's answer, then support; returns the entries refunded to the client."""
        dispute = self.dispute
        assert dispute is not None and self.snapshot is not None
        await self._notify(
            "dispute_opened",
            [self.input.provider_id, self.input.client_id],
            deadline=dispute.response_deadline.isoformat(),
        )
        while dispute.response is None:
            now = workflow.now()
            if now >= dispute.response_deadline:
                dispute.response = "silence"
                break
            seen = self.deadline_changed
            try:
                await workflow.wait_condition(
                    self._answered_or_moved(seen),
                    timeout=dispute.response_deadline - now,
                )
            except TimeoutError:
                continue
        if dispute.response == "accept":
            await self._notify("dispute_answered", [self.input.client_id], response="accept")
            await self._set_status("disputed", "provider accepted the dispute: disputed entries refunded")
            return set(dispute.entry_ids)
        note = "provider contested" if dispute.response == "contest" else "provider did not answer in time"
        await self._set_status("in_support", f"{note}: support resolves each entry")
        await workflow.wait_condition(lambda: set(dispute.resolutions) >= set(dispute.entry_ids))
        await self._notify("dispute_resolved", [self.input.client_id, self.input.provider_id])
        return {entry for entry, side in dispute.resolutions.items() if side == "client"}

    # --- updates -------------------------------------------------------------------------------------------

    @workflow.update
    def approve(self, request: Approve) -> ActionResult:
        self.decision = "approved"
        self.status = "approved"
        self.history.append(f"{workflow.now().isoformat()} client {request.actor.user_id} approved")
        return ActionResult(status="approved", message="approved: the client will be charged")

    @approve.validator
    def _check_approve(self, request: Approve) -> None:
        self._check_client(request.actor.user_id, request.actor.role)
        self._check_in_review("approve")

    @workflow.update
    def dispute_entries(self, request: Dispute) -> ActionResult:
        now = workflow.now()
        self.dispute = DisputeState(
            entry_ids=list(request.entry_ids),
            reason=request.reason.strip(),
            opened_by=request.actor.user_id,
            opened_at=now,
            response_deadline=now + timedelta(seconds=self.input.policy.response_window_s),
        )
        self.decision = "disputed"
        self.status = "disputed"
        self.history.append(f"{now.isoformat()} client disputed {len(request.entry_ids)} entries")
        return ActionResult(status="disputed", message="disputed: the provider has been asked to respond")

    @dispute_entries.validator
    def _check_dispute(self, request: Dispute) -> None:
        self._check_client(request.actor.user_id, request.actor.role)
        self._check_in_review("dispute")
        check_words(
            request.reason, "reason why the hours are disputed", required=True, code="dispute_invalid"
        )
        assert self.snapshot is not None
        try:
            check_disputable(self.snapshot.timesheet, request.entry_ids)
        except DomainError as error:
            raise reject(error.message, error.code) from None

    @workflow.update
    def respond(self, request: Respond) -> ActionResult:
        assert self.dispute is not None
        self.dispute.response = "accept" if request.accept else "contest"
        self.dispute.response_note = request.note.strip()
        self.history.append(f"{workflow.now().isoformat()} provider {self.dispute.response}ed the dispute")
        status: TimesheetStatus = "disputed" if request.accept else "in_support"
        return ActionResult(status=status, message=f"dispute {self.dispute.response}ed")

    @respond.validator
    def _check_respond(self, request: Respond) -> None:
        if request.actor.role != "provider" or request.actor.user_id != self.input.provider_id:
            raise reject("only the contract's provider answers a dispute", "not_a_party")
        if self.dispute is None or self.status != "disputed":
            raise reject(
                f"there is no dispute waiting for an answer (the timesheet is {self.status})",
                "no_dispute_waiting",
            )
        if self.dispute.response is not None:
            raise reject("the dispute has been answered already", "no_dispute_waiting")
        check_words(request.note, "note", required=False, code="invalid_input")
        if workflow.now() >= self.dispute.response_deadline:
            raise reject(
                f"the response window closed at {self.dispute.response_deadline.isoformat()}: support decides now",
                "response_window_closed",
            )

    @workflow.update
    def resolve(self, request: Resolve) -> ActionResult:
        assert self.dispute is not None
        self.dispute.resolutions.update(request.resolutions)
        if request.note.strip():
            self.dispute.resolution_note = request.note.strip()
        left = set(self.dispute.entry_ids) - set(self.dispute.resolutions)
        self.history.append(
            f"{workflow.now().isoformat()} support resolved {len(request.resolutions)} entries"
        )
        message = f"{len(left)} entries left to resolve" if left else "all disputed entries resolved"
        return ActionResult(status="in_support", message=message)

    @resolve.validator
    def _check_resolve(self, request: Resolve) -> None:
        check_words(request.note, "note", required=False, code="invalid_input")
        if request.actor.role != "support":
            raise reject("only support staff resolve disputes", "role_required")
        if self.dispute is None or self.status != "in_support":
            raise reject(
                f"no dispute is waiting for support (the timesheet is {self.status})", "no_dispute_waiting"
            )
        if not request.resolutions:
            raise reject("resolve at least one entry", "resolution_invalid")
        already = set(request.resolutions) & set(self.dispute.resolutions)
        if already:
            raise reject(f"entries {sorted(already)} are resolved already", "already_done")
        assert self.snapshot is not None
        try:
            check_resolutions(self.snapshot.timesheet, self.dispute.entry_ids, dict(request.resolutions))
        except DomainError as error:
            raise reject(error.message, error.code) from None

    @workflow.update
    def extend_deadline(self, request: ExtendDeadline) -> ActionResult:
        until = request.until
        if request.deadline == "review":
            self.review_deadline = until
        else:
            assert self.dispute is not None
            self.dispute.response_deadline = until
        self.deadline_changed += 1
        self.history.append(
            f"{workflow.now().isoformat()} support extended the {request.deadline} deadline to "
            f"{until.isoformat()}: {request.reason.strip()}"
        )
        return ActionResult(
            status=self.status, message=f"{request.deadline} deadline is now {until.isoformat()}"
        )

    @extend_deadline.validator
    def _check_extend(self, request: ExtendDeadline) -> None:
        if request.actor.role != "support":
            raise reject("only support staff extend deadlines", "role_required")
        check_words(request.reason, "reason for the extension", required=True, code="deadline_invalid")
        if request.until.tzinfo is None:
            raise reject("the new deadline needs a UTC offset", "deadline_invalid")
        now = workflow.now()
        if request.deadline == "review":
            if self.status not in ("open", "submitted"):
                raise reject(f"the review window is over (the timesheet is {self.status})", "not_in_review")
            current = self.review_deadline
        else:
            if self.dispute is None or self.status != "disputed" or self.dispute.response is not None:
                raise reject("no dispute is waiting for the provider's answer", "no_dispute_waiting")
            current = self.dispute.response_deadline
        if request.until <= max(current, now):
            raise reject(
                f"the new deadline must be later than the current one ({current.isoformat()})",
                "deadline_invalid",
            )
        if request.until - now > timedelta(days=60):
            raise reject("a deadline can be extended by at most 60 days", "deadline_invalid")

    def _check_client(self, user_id: str, role: str) -> None:
        if role != "client" or user_id != self.input.client_id:
            raise reject("only the contract's client reviews its timesheets", "not_a_party")

    def _check_in_review(self, action: str) -> None:
        if self.status == "open":
            raise reject(
                f"the week is not submitted yet: you can {action} after {self.edit_cutoff.isoformat()}",
                "not_in_review",
            )
        if self.status != "submitted" or self.decision is not None:
            raise reject(f"cannot {action}: the timesheet is already {self.status}", "not_in_review")
        if workflow.now() >= self.review_deadline:
            raise reject(
                f"cannot {action}: the review window closed at {self.review_deadline.isoformat()} "
                "and the timesheet was auto-approved",
                "review_window_closed",
            )

    # --- queries -------------------------------------------------------------------------------------------

    @workflow.query
    def view(self) -> TimesheetView:
        snapshot = self.snapshot
        return TimesheetView(
            contract_id=self.input.contract_id,
            week_start=self.input.week_start,
            status=self.status,
            edit_cutoff=self.edit_cutoff,
            review_deadline=self.review_deadline,
            content_hash=snapshot.content_hash if snapshot else None,
            amount_cents=snapshot.timesheet.amount_cents if snapshot else None,
            guaranteed_cents=snapshot.timesheet.guaranteed_cents if snapshot else None,
            owed_cents=self.owed_cents,
            charged_cents=self.charged_cents,
            guarantee_paid_cents=self.guarantee_paid_cents,
            released_cents=self.released_cents,
            dispute=self.dispute,
            history=list(self.history),
            secured=self.secured,
            payout_review=self.payout_review,
        )

    # --- helpers -------------------------------------------------------------------------------------------

    def _decided_or_moved(self, seen: int) -> Callable[[], bool]:
        return lambda: self.decision is not None or self.deadline_changed != seen

    def _answered_or_moved(self, seen: int) -> Callable[[], bool]:
        return lambda: (
            self.dispute is not None and (self.dispute.response is not None or self.deadline_changed != seen)
        )

    async def _activity(self, spec: ActivitySpec[In, Out], arg: In) -> Out:
        return await call(spec, arg, start_to_close=self.activity_timeout)

    async def _sleep_until(self, moment: datetime) -> None:
        delay = moment - workflow.now()
        if delay > timedelta(0):
            await workflow.sleep(delay)

    async def _set_status(self, status: TimesheetStatus, note: str) -> None:
        self.status = status
        if not self.history or not self.history[-1].endswith(note):
            self.history.append(f"{workflow.now().isoformat()} {status}: {note}")
        workflow.upsert_search_attributes(
            [
                TIMESHEET_STATUS.value_set(status),
                DISPUTE_OPEN.value_set(status in ("disputed", "in_support")),
            ]
        )
        await self._activity(
            RECORD_TIMESHEET_STATUS,
            StatusRecord(
                contract_id=self.input.contract_id,
                week_start=self.input.week_start,
                status=status,
                dispute=self.dispute,
            ),
        )

    async def _notify(self, kind: str, recipients: list[str], **payload: str | int | bool | None) -> None:
        week = f"{self.input.week_start:%Y-%m-%d}"
        await self._activity(
            NOTIFY,
            Notify(
                kind=kind,
                recipient_ids=recipients,
                contract_id=self.input.contract_id,
                week_start=self.input.week_start,
                dedupe_key=f"{kind}:{self.input.contract_id}:{week}",
                payload={"week": week, "status": self.status, **payload},
            ),
        )

    async def _finish(self) -> TimesheetView:
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self.input.contract_workflow_id:
            parent = workflow.get_external_workflow_handle(self.input.contract_workflow_id)
            try:
                await parent.signal(
                    "week_settled", WeekSettled(week=f"{self.input.week_start:%Y-%m-%d}", status=self.status)
                )
            except Exception as error:  # the contract workflow may be gone (terminated by an operator)
                workflow.logger.warning(
                    "could not tell %s the week settled: %s", self.input.contract_workflow_id, error
                )
        return self.view()
