-- Every call attempt is on record: a call core refused (every slot taken, no route, an agent
-- it does not know, a replayed webhook of an ended call) gets a row with status `refused` and
-- the reason in `end_reason`. Calls closed without an end from core keep their usual statuses
-- with `end_reason` `never_streamed` (admitted, no media session ever started) or `lost` (its
-- leases lapsed: the node running it died and no status callback came).
alter table calls drop constraint calls_status_check;
alter table calls add constraint calls_status_check
  check (status in ('queued', 'ringing', 'in-progress', 'completed', 'failed', 'busy', 'no-answer',
                    'canceled', 'refused'));

-- The orphan sweeper's scan: live calls, oldest news first.
create index calls_live_idx on calls (updated_at, id) where status in ('queued', 'ringing', 'in-progress');
