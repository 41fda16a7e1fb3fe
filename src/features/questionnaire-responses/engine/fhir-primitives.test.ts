import { describe, expect, it } from 'vitest';
import {
  charLength, compareTemporal, isFhirCode, isFhirDate, isFhirDateTime, isFhirInteger, isFhirString, isFhirTime,
} from './fhir-primitives.js';

describe('FHIR primitives', () => {
  it('dates: partial allowed, calendar checked', () => {
    expect(['2024', '2024-02', '2024-02-29', '0001-01-01'].every(isFhirDate)).toBe(true);
    expect(['2023-02-29', '2024-13', '24-01-01', '2024-1-1', '0000', '2024-04-31', ''].some(isFhirDate)).toBe(false);
  });
  it('dateTimes: a time needs seconds and a zone', () => {
    expect(['2024', '2024-04-04', '2024-04-04T18:41:13Z', '2024-04-04T18:41:13.730+02:00'].every(isFhirDateTime)).toBe(true);
    expect(['2024-04-04T18:41:13', '2024-04-04T18:41Z', '2024-04-04 18:41:13Z', '2024-04-04T25:00:00Z'].some(isFhirDateTime)).toBe(false);
  });
  it('times: hh:mm:ss with optional fraction', () => {
    expect(isFhirTime('23:59:60.123')).toBe(true);
    expect(['23:59', '24:00:00', '8:00:00'].some(isFhirTime)).toBe(false);
  });
  it('codes: inner single spaces are fine, surrounding or doubled whitespace is not', () => {
    expect(isFhirCode('More than half the days')).toBe(true);
    expect([' a', 'a ', 'a  b', 'a\tb', ''].some(isFhirCode)).toBe(false);
  });
  it('strings and integers', () => {
    expect(isFhirString('line\nbreak\ttab')).toBe(true);
    expect(isFhirString('bell\u0007')).toBe(false);
    expect(isFhirInteger(2147483647)).toBe(true);
    expect(isFhirInteger(2147483648)).toBe(false);
    expect(charLength('🙂é')).toBe(2);
  });
  it('orders temporal values, and refuses to order different precisions that agree', () => {
    expect(compareTemporal('2024-01-02', '2024-01-10')).toBe(-1);
    expect(compareTemporal('2023', '2024-06-01')).toBe(-1);
    expect(compareTemporal('2024', '2024-06-01')).toBeUndefined();
    expect(compareTemporal('2024-01-01T00:30:00+01:00', '2023-12-31T23:45:00Z')).toBe(-1);
    expect(compareTemporal('10:00:00', '10:00:00.000')).toBe(0);
  });
});
