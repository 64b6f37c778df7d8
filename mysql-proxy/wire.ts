/**
 * Results in the shape `@planetscale/database` reads (PlanetScale's HTTP API): fields with
 * Vitess type names and charsets, rows as the column bytes concatenated in base64 with each
 * column's length (-1 for NULL), counts and ids as strings.
 */
import type { FieldPacket, ResultSetHeader } from 'mysql2';

export interface WireField {
  name: string;
  type: string;
  table?: string;
  orgTable?: string;
  database?: string;
  orgName?: string;
  columnLength?: number;
  charset?: number;
  decimals?: number;
  flags?: number;
}

export interface WireResult {
  fields?: WireField[];
  rows?: { lengths: string[]; values: string }[];
  rowsAffected?: string;
  insertId?: string;
}

const UNSIGNED = 32;
const ENUM = 256;
const SET = 2048;
const BINARY_CHARSET = 63;

const integers: Record<number, string> = { 1: 'INT8', 2: 'INT16', 9: 'INT24', 3: 'INT32', 8: 'INT64' };
const fixed: Record<number, string> = {
  0: 'DECIMAL', 246: 'DECIMAL', 4: 'FLOAT32', 5: 'FLOAT64', 6: 'NULL_TYPE',
  7: 'TIMESTAMP', 10: 'DATE', 11: 'TIME', 12: 'DATETIME', 13: 'YEAR', 16: 'BIT', 245: 'JSON', 255: 'GEOMETRY',
};

/** MySQL protocol column type and flags → Vitess type name. */
export function vitessType(columnType: number, flags: number, charset: number): string {
  const integer = integers[columnType];
  if (integer) return flags & UNSIGNED ? `U${integer}` : integer;
  const known = fixed[columnType];
  if (known) return known;
  if (flags & ENUM || columnType === 247) return 'ENUM';
  if (flags & SET || columnType === 248) return 'SET';
  const binary = charset === BINARY_CHARSET;
  if (columnType >= 249 && columnType <= 252) return binary ? 'BLOB' : 'TEXT';
  if (columnType === 254) return binary ? 'BINARY' : 'CHAR';
  return binary ? 'VARBINARY' : 'VARCHAR'; // 15 VARCHAR, 253 VAR_STRING
}

export function toWireField(field: FieldPacket): WireField {
  const f = field as FieldPacket & { columnType: number; characterSet: number };
  return {
    name: f.name,
    type: vitessType(f.columnType, f.flags as number, f.characterSet),
    table: f.table || undefined,
    orgTable: f.orgTable || undefined,
    database: f.schema || undefined,
    orgName: f.orgName || undefined,
    columnLength: f.columnLength,
    charset: f.characterSet,
    decimals: f.decimals,
    flags: f.flags as number,
  };
}

/** Rows read with each column as its raw text-protocol bytes (null for NULL). */
export function toWireRows(rows: (Buffer | null)[][]): WireResult['rows'] {
  return rows.map((columns) => ({
    lengths: columns.map((c) => (c === null ? '-1' : String(c.length))),
    values: Buffer.concat(columns.filter((c): c is Buffer => c !== null)).toString('base64'),
  }));
}

export function toWireResult(result: unknown, fields: FieldPacket[] | undefined): WireResult {
  if (fields) return { fields: fields.map(toWireField), rows: toWireRows(result as (Buffer | null)[][]) };
  const header = result as ResultSetHeader;
  return { rowsAffected: String(header.affectedRows ?? 0), insertId: String(header.insertId ?? 0) };
}
