import { invalidField } from '../../errors.ts';

/** A contact as the API takes it: a number, and optional string variables for the agent. */
export interface ContactInput {
  phoneNumber: string;
  variables?: Record<string, string>;
}

/** Column names accepted for the phone number (case-insensitive). */
const PHONE_COLUMNS = new Set(['phonenumber', 'phone_number', 'phone', 'number', 'to']);
const VARIABLE_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;

/**
 * RFC 4180 records: comma-separated fields, optionally double-quoted (a quote inside a quoted
 * field is doubled), records ending in CRLF or LF. Throws naming the line of a broken quote.
 */
export function parseCsvRecords(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let quoteLine = 0;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0; // a UTF-8 BOM, as spreadsheets write it
  const endRecord = () => {
    record.push(field);
    if (!(record.length === 1 && record[0] === '')) records.push(record);
    record = [];
    field = '';
  };
  for (; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else {
        if (c === '\n') line++;
        field += c;
      }
    } else if (c === '"' && field === '') {
      quoted = true;
      quoteLine = line;
    } else if (c === ',') {
      record.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      endRecord();
      line++;
    } else field += c;
  }
  if (quoted) throw invalidField('(body)', `CSV line ${quoteLine}: a quoted field is never closed`);
  if (field !== '' || record.length > 0) endRecord();
  return records;
}

/**
 * Contacts from a CSV upload: a header row naming a phone column (`phone_number`, `phoneNumber`,
 * `phone`, `number` or `to`); every other column becomes a variable of the contact. Errors name
 * the CSV line.
 */
export function contactsFromCsv(text: string, e164: RegExp): ContactInput[] {
  const records = parseCsvRecords(text);
  const header = records.shift();
  if (!header) throw invalidField('(body)', 'CSV is empty: send a header row and one row per contact');
  const names = header.map((h) => h.trim());
  const phoneIndex = names.findIndex((h) => PHONE_COLUMNS.has(h.toLowerCase()));
  if (phoneIndex < 0) {
    throw invalidField(
      '(body)',
      'CSV header has no phone column (phone_number, phoneNumber, phone, number or to)',
    );
  }
  names.forEach((name, i) => {
    if (i !== phoneIndex && !VARIABLE_NAME.test(name)) {
      throw invalidField(
        '(body)',
        `CSV header column ${i + 1} "${name}" is not a variable name (letters, digits, _)`,
      );
    }
  });
  return records.map((fields, r) => {
    const line = r + 2;
    if (fields.length !== names.length) {
      throw invalidField(
        '(body)',
        `CSV line ${line}: ${fields.length} fields, the header has ${names.length}`,
      );
    }
    const phoneNumber = fields[phoneIndex]!.trim();
    if (!e164.test(phoneNumber)) {
      throw invalidField(
        '(body)',
        `CSV line ${line}: "${phoneNumber}" is not an E.164 number (+14155550123)`,
      );
    }
    const variables: Record<string, string> = {};
    names.forEach((name, i) => {
      if (i !== phoneIndex && fields[i] !== '') variables[name] = fields[i]!;
    });
    return Object.keys(variables).length > 0 ? { phoneNumber, variables } : { phoneNumber };
  });
}
