import { describe, expect, it } from 'vitest';
import { ApiError } from '../../control/errors.ts';
import { contactsFromCsv, parseCsvRecords } from '../../control/modules/campaigns/csv.ts';
import { canonicalTimeZone, inWindow, localTime } from '../../control/modules/campaigns/schedule.ts';

const weekdays = {
  daysOfWeek: ['mon', 'tue', 'wed', 'thu', 'fri'] as const,
  startTime: '09:00',
  endTime: '17:30',
};
const schedule = (
  s: typeof weekdays | { daysOfWeek: readonly string[]; startTime: string; endTime: string },
) => ({ ...s, daysOfWeek: [...s.daysOfWeek] }) as Parameters<typeof inWindow>[0];

describe('campaign schedule window', () => {
  it('reads the wall clock of the campaign’s zone, daylight saving included', () => {
    // 2026-01-05 is a Monday. 14:00 UTC is 09:00 in New York in winter (UTC-5)…
    expect(localTime('America/New_York', new Date('2026-01-05T14:00:00Z'))).toEqual({
      day: 'mon',
      minutes: 540,
    });
    // …and 10:00 in summer (UTC-4).
    expect(localTime('America/New_York', new Date('2026-07-06T14:00:00Z'))).toEqual({
      day: 'mon',
      minutes: 600,
    });
    // Across the date line the day changes too.
    expect(localTime('Pacific/Auckland', new Date('2026-01-05T14:00:00Z'))).toEqual({
      day: 'tue',
      minutes: 180,
    });
  });

  it('opens on listed days between start (inclusive) and end (exclusive)', () => {
    const s = schedule(weekdays);
    const at = (iso: string) => inWindow(s, 'America/New_York', new Date(iso));
    expect(at('2026-01-05T13:59:00Z')).toBe(false); // Mon 08:59
    expect(at('2026-01-05T14:00:00Z')).toBe(true); // Mon 09:00
    expect(at('2026-01-05T22:29:00Z')).toBe(true); // Mon 17:29
    expect(at('2026-01-05T22:30:00Z')).toBe(false); // Mon 17:30
    expect(at('2026-01-10T15:00:00Z')).toBe(false); // Sat 10:00
    expect(inWindow(null, 'UTC', new Date())).toBe(true);
  });

  it('runs an overnight window into the next morning, on the day it started', () => {
    const s = schedule({ daysOfWeek: ['fri'], startTime: '22:00', endTime: '06:00' });
    expect(inWindow(s, 'UTC', new Date('2026-01-09T23:00:00Z'))).toBe(true); // Fri 23:00
    expect(inWindow(s, 'UTC', new Date('2026-01-10T05:59:00Z'))).toBe(true); // Sat 05:59
    expect(inWindow(s, 'UTC', new Date('2026-01-10T06:00:00Z'))).toBe(false); // Sat 06:00
    expect(inWindow(s, 'UTC', new Date('2026-01-10T23:00:00Z'))).toBe(false); // Sat 23:00
    expect(inWindow(s, 'UTC', new Date('2026-01-09T05:00:00Z'))).toBe(false); // Fri 05:00 (Thu not listed)
  });

  it('knows IANA zones and nothing else', () => {
    expect(canonicalTimeZone('Europe/Paris')).toBe('Europe/Paris');
    expect(canonicalTimeZone('UTC')).toBe('UTC');
    expect(canonicalTimeZone('Mars/Olympus_Mons')).toBeNull();
  });
});

describe('contacts CSV', () => {
  const e164 = /^\+[1-9]\d{1,14}$/;

  it('parses RFC 4180: quotes, doubled quotes, commas and line breaks in quotes, CRLF, a BOM', () => {
    expect(parseCsvRecords('\uFEFFa,b\r\n"x, ""y""","line\nbreak"\r\n\r\n')).toEqual([
      ['a', 'b'],
      ['x, "y"', 'line\nbreak'],
    ]);
  });

  it('takes the phone column by any usual name and the other columns as variables', () => {
    expect(contactsFromCsv('Name,Phone\nAda,+14155550123\n,+14155550124\n', e164)).toEqual([
      { phoneNumber: '+14155550123', variables: { Name: 'Ada' } },
      { phoneNumber: '+14155550124' },
    ]);
  });

  it('names the line of a bad row', () => {
    const failure = (text: string) => {
      try {
        contactsFromCsv(text, e164);
      } catch (err) {
        expect(err).toBeInstanceOf(ApiError);
        return (err as ApiError).message;
      }
      throw new Error('no error');
    };
    expect(failure('phone\n+14155550123\n4155550124\n')).toContain('CSV line 3');
    expect(failure('phone,name\n+14155550123\n')).toContain('CSV line 2: 1 fields, the header has 2');
    expect(failure('phone,"bad name"\n+14155550123,x\n')).toContain('not a variable name');
    expect(failure('phone\n"+1415\n')).toContain('never closed');
    expect(failure('')).toContain('CSV is empty');
  });
});
