"""The planning engine: for every invoice on one day, what must happen and why. Pure: no I/O, no clock.

`plan_day` (day.py) turns the ledger state, the policy and the history of what was already done into a `Plan`
of actions, each with a deterministic key (keys.py) and a human reason.

Rules (issue #2, section 4), and the choices made where the issue leaves room:

* Nothing for draft, void or paid invoices, disputed invoices (until the dispute's end date,
  inclusive; None = open-ended), paused customers (store pause or policy `paused_until`, inclusive),
  excluded customers (policy `exclude` or an exclusion tag) or balances below `exclusions.min_balance`.
  A step with `min_amount` is not applicable to smaller balances (neither sent nor superseded).
* Each step at most once per invoice: a step counts as done when the history holds a REMINDER, TASK,
  AGENCY or SUPERSEDED action for it. Steps sharing an offset form a tier and go out together (D+15
  late letter + e-mail). After a gap only the most advanced due tier is proposed; the due steps it
  skips are returned in `Plan.superseded` (recorded, never sent). Never back down the ladder.
* Notices: invoices of one customer and currency due for the same step today form ONE notice
  (REMINDER, TASK or AGENCY: the kind the step's channel declares in the rulebook) listing all their
  invoice ids, plus a NOTE per invoice (key = action_key(notice key, "note", invoice id)).
* Charges are per invoice (FEE actions; ledger writes are per invoice) and cumulative: interest to
  post = accrued to date (policies.interest) minus what the history already charged; compensation
  once per invoice (B2B only, when late); `fee:<name>` once per invoice per step (matched on
  Charge(component="fee", description=<name>) with that step). An increment below `interest.minimum`
  waits for a later step. When a gap supersedes steps that charged interest or compensation, those
  charges roll into the first step proposed (what is owed stays owed; fees for letters never sent do
  not). Recurring fee: every `every_days` after the first FEE in the history, one charge per period
  (step "recurring:<fee>", period index in the key); a missed period is not caught up.
* Early-payment discount: pre-due notices carry the offer in `details.invoices[i].discount`
  while its window is open; an invoice settled inside the window for total minus discount, whose
  ledger balance is the discount, gets a CREDIT_NOTE (once) instead of reminders.
* Payment plans (policies.payment_plans): covered invoices are not dunned while the plan is active;
  each missed instalment is dunned on its own with the ladder's steps of offset >= 0 relative to the
  instalment due date (instalment index and plan id in the key, no charges: the plan is the agreed
  settlement). Acceleration: when an instalment is N days late the plan ends and the ladder resumes
  on its open invoices with the acceleration date as their effective due date (interest included).
* THANKS: once per invoice, when an invoice that received a notice (REMINDER, TASK or AGENCY) is fully
  paid; invoices of one customer and currency thanked the same day form one action.
* Credit: see policies.credit (exposure, breaches -> CREDIT_ALERT / TASK actions, suggestions).

Where each rule lives: steps.py (the ladder on one invoice, superseded steps), charges.py (interest,
compensation, fees, the discount credit note), notices.py (grouping into one notice, notes, thanks),
instalments.py (payment plans), credit_limits.py (breach actions), keys.py (action keys), plan.py
(the Plan and its order), run.py (the day's state and caches), history.py (what was done).

Speed: ladders are compiled once per run with adjusted step dates cached per due date, customer
settings are cached per customer, interest is computed only when a charging step is proposed, and
reasons are built only for invoices that yield an action.
"""

from policies.planning.day import plan_day
from policies.planning.plan import Plan, SkipReason, merge_plans, plan_order

__all__ = ["Plan", "SkipReason", "merge_plans", "plan_day", "plan_order"]
