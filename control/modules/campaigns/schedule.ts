/**
 * A campaign's calling window in its own time zone, with the platform's `Intl` (IANA tz data):
 * days of the week plus a start and end wall-clock time. A window whose end is not after its
 * start runs overnight (22:00-06:00 belongs to the day it starts on).
 */

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export interface Schedule {
  daysOfWeek: Weekday[];
  /** `HH:MM`, 24-hour, local time. */
  startTime: string;
  endTime: string;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** The zone's canonical name, or null when `Intl` does not know it. */
export function canonicalTimeZone(timeZone: string): string | null {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone }).resolvedOptions().timeZone;
  } catch {
    return null;
  }
}

/** Weekday and minutes since local midnight of `at` in `timeZone`. */
export function localTime(timeZone: string, at: Date): { day: Weekday; minutes: number } {
  let weekday = '';
  let hour = 0;
  let minute = 0;
  for (const part of formatter(timeZone).formatToParts(at)) {
    if (part.type === 'weekday') weekday = part.value.toLowerCase();
    else if (part.type === 'hour') hour = Number(part.value);
    else if (part.type === 'minute') minute = Number(part.value);
  }
  return { day: weekday as Weekday, minutes: hour * 60 + minute };
}

/** `HH:MM` → minutes since midnight. */
export function minutesOf(hhmm: string): number {
  const [h, m] = hhmm.split(':').map(Number);
  return h! * 60 + m!;
}

/** Whether a campaign may dial at `at`. No schedule: any time. */
export function inWindow(schedule: Schedule | null, timeZone: string, at: Date): boolean {
  if (!schedule) return true;
  const { day, minutes } = localTime(timeZone, at);
  const start = minutesOf(schedule.startTime);
  const end = minutesOf(schedule.endTime);
  const days = new Set(schedule.daysOfWeek);
  if (start < end) return days.has(day) && minutes >= start && minutes < end;
  // Overnight: the evening part belongs to today, the early-morning part to yesterday.
  const yesterday = WEEKDAYS[(WEEKDAYS.indexOf(day) + 6) % 7]!;
  return (days.has(day) && minutes >= start) || (days.has(yesterday) && minutes < end);
}
