/**
 * TTHeader integer info header keys as a thrift route's config writes them (`int_headers`,
 * `match_int_headers`): Kitex's names from its transmeta key table (@loch/thrift's
 * TTHeaderIntKey; any case, so `to_service` and `TO_SERVICE` are key 6) or the number itself,
 * 0-65535, for keys the table does not name. Not for string headers (`headers`,
 * `match_headers`), which are names as written.
 */
import { TTHeaderIntKey } from '@loch/thrift';

const BY_NAME = new Map<string, number>(Object.entries(TTHeaderIntKey));

/** The names accepted, for error messages. */
export const INT_HEADER_NAMES = Object.keys(TTHeaderIntKey)
  .map((n) => n.toLowerCase())
  .join(', ');

/** The key `written` names, or undefined when it names none. */
export function intHeaderKey(written: string | number): number | undefined {
  if (typeof written === 'number')
    return Number.isInteger(written) && written >= 0 && written <= 0xffff ? written : undefined;
  if (/^[0-9]{1,5}$/.test(written)) return intHeaderKey(Number(written));
  return BY_NAME.get(written.toUpperCase());
}

/** What a config key that names no integer header is told. */
export function unknownIntHeader(written: string | number): string {
  return `"${written}" is not a TTHeader integer key: use a number 0-65535 or one of ${INT_HEADER_NAMES}`;
}
