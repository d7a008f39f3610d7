import { afterEach, describe, expect, it } from 'vitest';
import { optionChecks, quote, TransformError, transforms } from './transforms.js';

const ctx = {};

function failure(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(TransformError);
    return (error as Error).message;
  }
  throw new Error('expected a TransformError');
}

describe('empty input', () => {
  const noOptions = ['trim', 'lower_case', 'upper_case', 'normalise_text', 'email', 'phone', 'parse_date', 'parse_timestamp', 'decimal', 'domain_from_email'] as const;

  it.each(noOptions)('%s passes null, undefined and blank text through as undefined', (name) => {
    for (const empty of [null, undefined, '', '   \t']) expect(transforms[name](empty, {}, ctx)).toBeUndefined();
  });

  it('split_full_name and map_values pass empty through too', () => {
    expect(transforms.split_full_name(' ', { part: 'family' }, ctx)).toBeUndefined();
    expect(transforms.map_values(null, { values: { a: 'b' }, default: 'x' }, ctx)).toBeUndefined();
  });

  it('text transforms refuse objects, quoting them', () => {
    expect(failure(() => transforms.trim({ a: 1 }, {}, ctx))).toBe(`'{"a":1}' is not a text value`);
  });
});

describe('text', () => {
  it('trim, lower_case, upper_case', () => {
    expect(transforms.trim('  Jane \n', {}, ctx)).toBe('Jane');
    expect(transforms.lower_case('ÄRGER Ltd', {}, ctx)).toBe('ärger ltd');
    expect(transforms.upper_case('de', {}, ctx)).toBe('DE');
  });

  it('reads numbers and booleans as text', () => {
    expect(transforms.trim(42, {}, ctx)).toBe('42');
    expect(transforms.upper_case(true, {}, ctx)).toBe('TRUE');
  });

  it('normalise_text applies NFKC and collapses whitespace', () => {
    // 'ﬁ' is a ligature, '\u00a0' a no-break space and 'Ａ' a full-width letter.
    expect(transforms.normalise_text('  ﬁne\u00a0\u00a0print \t Ａ\n', {}, ctx)).toBe('fine print A');
  });
});

describe('email', () => {
  it('trims and lower-cases', () => {
    expect(transforms.email('  Jane.Doe+news@Example.COM ', {}, ctx)).toBe('jane.doe+news@example.com');
    expect(transforms.email('müller@bücher.de', {}, ctx)).toBe('müller@bücher.de');
  });

  it.each(['jane@@x', 'jane', 'jane@example', '@example.com', 'jane.@example.com', 'jane doe@example.com', 'jane@-x.com'])('rejects %s', (input) => {
    expect(failure(() => transforms.email(input, {}, ctx))).toBe(`'${input}' is not an email address`);
  });
});

describe('phone', () => {
  it('formats national numbers as E.164 with the default_region option', () => {
    expect(transforms.phone('030 1234567', { default_region: 'DE' }, ctx)).toBe('+49301234567');
    expect(transforms.phone('(020) 7946 0958', { default_region: 'GB' }, ctx)).toBe('+442079460958');
  });

  it("falls back to the context's region, and the option wins over it", () => {
    expect(transforms.phone('030 1234567', {}, { defaultRegion: 'de' })).toBe('+49301234567');
    expect(transforms.phone('06 12 34 56 78', { default_region: 'FR' }, { defaultRegion: 'DE' })).toBe('+33612345678');
  });

  it('reads international numbers without a region, and numbers given as JSON numbers', () => {
    expect(transforms.phone('+49 30 1234567', {}, ctx)).toBe('+49301234567');
    expect(transforms.phone(4930123456, {}, { defaultRegion: 'DE' })).toMatch(/^\+49/);
  });

  it('rejects invalid numbers naming the region', () => {
    expect(failure(() => transforms.phone('12', { default_region: 'DE' }, ctx))).toBe("'12' is not a valid phone number (region DE)");
    expect(failure(() => transforms.phone('030 1234567', {}, ctx))).toBe("'030 1234567' is not a valid phone number (no default region)");
    expect(failure(() => transforms.phone('+1 555', {}, ctx))).toBe("'+1 555' is not a valid phone number (no default region)");
  });

  it('rejects an unknown region from the context', () => {
    expect(failure(() => transforms.phone('030 1234567', {}, { defaultRegion: 'XX' }))).toBe("'XX' is not a known phone region");
  });
});

describe('parse_date', () => {
  it('reads ISO dates without a format', () => {
    expect(transforms.parse_date(' 2024-02-29 ', {}, ctx)).toBe('2024-02-29');
  });

  it.each([
    ['dd.MM.yyyy', '05.01.2024', '2024-01-05'],
    ['dd.MM.yyyy', '5.1.2024', '2024-01-05'],
    ['yyyyMMdd', '20240105', '2024-01-05'],
    ['M/d/yyyy', '1/5/2024', '2024-01-05'],
    ['d MMM yyyy', '5 Jan 2024', '2024-01-05'],
  ])('format %s reads %s', (format, input, expected) => {
    expect(transforms.parse_date(input, { format }, ctx)).toBe(expected);
  });

  it('reads a yyyyMMdd number from JSON', () => {
    expect(transforms.parse_date(20240105, { format: 'yyyyMMdd' }, ctx)).toBe('2024-01-05');
  });

  it('rejects impossible dates naming the expected format', () => {
    expect(failure(() => transforms.parse_date('31.02.2024', { format: 'dd.MM.yyyy' }, ctx))).toBe("'31.02.2024' is not a valid date (expected dd.MM.yyyy)");
    expect(failure(() => transforms.parse_date('2023-02-29', {}, ctx))).toBe("'2023-02-29' is not a valid date (expected yyyy-MM-dd)");
  });

  it('rejects other shapes, trailing text and two-digit years for yyyy', () => {
    expect(failure(() => transforms.parse_date('05.01.2024', {}, ctx))).toContain('expected yyyy-MM-dd');
    expect(failure(() => transforms.parse_date('2024-1-5', {}, ctx))).toContain('expected yyyy-MM-dd');
    expect(failure(() => transforms.parse_date('05.01.2024 x', { format: 'dd.MM.yyyy' }, ctx))).toContain('is not a valid date');
    expect(failure(() => transforms.parse_date('5.1.24', { format: 'dd.MM.yyyy' }, ctx))).toBe("'5.1.24' is not a valid date (expected dd.MM.yyyy)");
  });
});

describe('parse_timestamp', () => {
  const zone = process.env.TZ;
  afterEach(() => {
    if (zone === undefined) delete process.env.TZ;
    else process.env.TZ = zone;
  });

  it("reads OData v2's /Date(milliseconds)/, with or without an offset", () => {
    expect(transforms.parse_timestamp('/Date(1704447000000)/', {}, ctx)).toBe('2024-01-05T09:30:00.000Z');
    expect(transforms.parse_timestamp('/Date(1704447000000+0100)/', {}, ctx)).toBe('2024-01-05T09:30:00.000Z');
    expect(() => transforms.parse_timestamp('/Date(soon)/', {}, ctx)).toThrow(TransformError);
  });

  it('reads ISO 8601 with an offset as that instant', () => {
    expect(transforms.parse_timestamp('2024-01-05T10:30:00+01:00', {}, ctx)).toBe('2024-01-05T09:30:00.000Z');
    expect(transforms.parse_timestamp('2024-01-05T10:30:00Z', { timezone: '+05:00' }, ctx)).toBe('2024-01-05T10:30:00.000Z');
  });

  it('reads ISO 8601 without an offset in the timezone option (UTC by default)', () => {
    expect(transforms.parse_timestamp('2024-01-05T10:30:00', {}, ctx)).toBe('2024-01-05T10:30:00.000Z');
    expect(transforms.parse_timestamp('2024-01-05 10:30', { timezone: '+01:00' }, ctx)).toBe('2024-01-05T09:30:00.000Z');
    expect(transforms.parse_timestamp('2024-01-05', { timezone: '-03:30' }, ctx)).toBe('2024-01-05T03:30:00.000Z');
  });

  it('reads a date-fns format in the timezone option', () => {
    expect(transforms.parse_timestamp('05.01.2024 10:30', { format: 'dd.MM.yyyy HH:mm' }, ctx)).toBe('2024-01-05T10:30:00.000Z');
    expect(transforms.parse_timestamp('05.01.2024 10:30', { format: 'dd.MM.yyyy HH:mm', timezone: '+01:00' }, ctx)).toBe('2024-01-05T09:30:00.000Z');
  });

  it('lets an offset in the format win over the timezone option', () => {
    const options = { format: "yyyy-MM-dd'T'HH:mmXXX", timezone: '+05:00' };
    expect(transforms.parse_timestamp('2024-01-05T10:30-02:00', options, ctx)).toBe('2024-01-05T12:30:00.000Z');
  });

  it("does not depend on the process's time zone, even inside its DST gap", () => {
    process.env.TZ = 'Europe/Berlin';
    // 02:30 on 31 March 2024 does not exist in Berlin; as UTC it does.
    expect(transforms.parse_timestamp('31.03.2024 02:30', { format: 'dd.MM.yyyy HH:mm' }, ctx)).toBe('2024-03-31T02:30:00.000Z');
    expect(transforms.parse_timestamp('2024-03-31T02:30:00', {}, ctx)).toBe('2024-03-31T02:30:00.000Z');
    expect(transforms.parse_date('31.03.2024', { format: 'dd.MM.yyyy' }, ctx)).toBe('2024-03-31');
  });

  it('rejects invalid timestamps naming the expected format', () => {
    expect(failure(() => transforms.parse_timestamp('31.02.2024 10:00', { format: 'dd.MM.yyyy HH:mm' }, ctx))).toBe(
      "'31.02.2024 10:00' is not a valid timestamp (expected dd.MM.yyyy HH:mm)",
    );
    expect(failure(() => transforms.parse_timestamp('yesterday', {}, ctx))).toBe("'yesterday' is not a valid timestamp (expected ISO 8601)");
  });
});

describe('decimal', () => {
  it.each([
    ['1234.5', '.', 1234.5],
    ['1,234,567.89', '.', 1234567.89],
    ['-0.5', '.', -0.5],
    ['1.234,50', ',', 1234.5],
    ['1 234,5', ',', 1234.5],
    ['12,5', ',', 12.5],
    ['1\u00a0000', '.', 1000],
  ] as const)('%s with separator %s is %d', (input, decimal_separator, expected) => {
    expect(transforms.decimal(input, { decimal_separator }, ctx)).toBe(expected);
  });

  it("uses '.' by default and passes numbers through", () => {
    expect(transforms.decimal('2.50', {}, ctx)).toBe(2.5);
    expect(transforms.decimal(19.99, { decimal_separator: ',' }, ctx)).toBe(19.99);
  });

  it('rejects text that is not a number, and misplaced thousands separators', () => {
    expect(failure(() => transforms.decimal('abc', {}, ctx))).toBe("'abc' is not a decimal number (decimal separator '.')");
    // With '.' as the decimal separator, '12,50' is a German decimal, not twelve hundred and fifty.
    expect(failure(() => transforms.decimal('12,50', {}, ctx))).toBe("'12,50' is not a decimal number (decimal separator '.')");
    expect(failure(() => transforms.decimal('1.5', { decimal_separator: ',' }, ctx))).toBe("'1.5' is not a decimal number (decimal separator ',')");
    expect(failure(() => transforms.decimal(true, {}, ctx))).toContain("'true' is not a decimal number");
    expect(failure(() => transforms.decimal(Number.NaN, {}, ctx))).toContain('is not a decimal number');
  });
});

describe('split_full_name', () => {
  const split = (input: string) => ({
    given: transforms.split_full_name(input, { part: 'given' }, ctx),
    family: transforms.split_full_name(input, { part: 'family' }, ctx),
  });

  it.each([
    ['John Smith', 'John', 'Smith'],
    ['John Michael Smith', 'John Michael', 'Smith'],
    ['Smith, John', 'John', 'Smith'],
    ['Smith,  John Michael ', 'John Michael', 'Smith'],
    ['van der Berg, Jan', 'Jan', 'van der Berg'],
    ['Jan van der Berg', 'Jan', 'van der Berg'],
    ['Ludwig van Beethoven', 'Ludwig', 'van Beethoven'],
    ['Leonardo da Vinci', 'Leonardo', 'da Vinci'],
    ['Juan de la Cruz', 'Juan', 'de la Cruz'],
    ['Anna De Luca', 'Anna', 'De Luca'],
    ['Dr. John Smith', 'John', 'Smith'],
    ['Prof. Dr. Hans-Peter Müller', 'Hans-Peter', 'Müller'],
    ['Herr Max Mustermann', 'Max', 'Mustermann'],
    ['Mme Claire Dubois', 'Claire', 'Dubois'],
    ['M. Jean Dupont', 'Jean', 'Dupont'],
    ['Smith, Mrs. Jane', 'Jane', 'Smith'],
  ])('%s → %s / %s', (input, given, family) => {
    expect(split(input)).toEqual({ given, family });
  });

  it('keeps a bare initial M that has no dot', () => {
    expect(split('M Jean Dupont')).toEqual({ given: 'M Jean', family: 'Dupont' });
  });

  it('puts a single word in the family name only', () => {
    expect(split('Madonna')).toEqual({ given: undefined, family: 'Madonna' });
    expect(split('Dr. Who')).toEqual({ given: undefined, family: 'Who' });
  });

  it('gives nothing for an honorific alone', () => {
    expect(split('Mr.')).toEqual({ given: undefined, family: undefined });
  });
});

describe('map_values', () => {
  const values = { Yes: 'opt_in', no: 'opt_out', ' 1 ': true };

  it('matches case-insensitively on the trimmed text', () => {
    expect(transforms.map_values(' YES ', { values }, ctx)).toBe('opt_in');
    expect(transforms.map_values('No', { values }, ctx)).toBe('opt_out');
    expect(transforms.map_values(1, { values }, ctx)).toBe(true);
  });

  it('uses the default when nothing matches', () => {
    expect(transforms.map_values('maybe', { values, default: 'opt_out' }, ctx)).toBe('opt_out');
  });

  it('without a default, lists the allowed values', () => {
    expect(failure(() => transforms.map_values('maybe', { values }, ctx))).toBe("'maybe' is not one of: Yes, no,  1 ");
  });
});

describe('domain_from_email', () => {
  it('gives the lower-cased domain', () => {
    expect(transforms.domain_from_email(' Jane@Sub.Example.COM', {}, ctx)).toBe('sub.example.com');
  });

  it('rejects text that is not an email address', () => {
    expect(failure(() => transforms.domain_from_email('example.com', {}, ctx))).toBe("'example.com' is not an email address");
  });
});

describe('default', () => {
  it('fills empty input and keeps the rest', () => {
    expect(transforms.default('  ', { value: 'unknown' }, ctx)).toBe('unknown');
    expect(transforms.default(null, { value: 0 }, ctx)).toBe(0);
    expect(transforms.default('Jane', { value: 'unknown' }, ctx)).toBe('Jane');
    expect(transforms.default(false, { value: true }, ctx)).toBe(false);
  });
});

describe('empty_if', () => {
  it('turns placeholder values into empty ones and keeps the rest', () => {
    expect(transforms.empty_if(0, { values: [0, 'n/a'] }, ctx)).toBeUndefined();
    expect(transforms.empty_if(' N/A ', { values: [0, 'n/a'] }, ctx)).toBeUndefined();
    expect(transforms.empty_if('0', { values: [0] }, ctx)).toBeUndefined();
    expect(transforms.empty_if(42, { values: [0] }, ctx)).toBe(42);
    expect(transforms.empty_if('', { values: ['x'] }, ctx)).toBeUndefined();
  });
});

describe('optionChecks', () => {
  it('accepts good formats and regions', () => {
    expect(optionChecks.parse_date!({ format: 'dd.MM.yyyy' })).toBeUndefined();
    expect(optionChecks.parse_timestamp!({ format: "yyyy-MM-dd'T'HH:mm:ssXXX" })).toBeUndefined();
    expect(optionChecks.phone!({ default_region: 'DE' })).toBeUndefined();
  });

  it('names the bad format and the bad region', () => {
    expect(optionChecks.parse_date!({ format: 'dd.MM.yyyz' })).toMatch(/^format 'dd.MM.yyyz' is not a date-fns format: .*`z`/);
    expect(optionChecks.parse_timestamp!({ format: 'HH:mm a' })).toMatch(/^format 'HH:mm a' is not a date-fns format/);
    expect(optionChecks.phone!({ default_region: 'XX' })).toBe("default_region 'XX' is not a known phone region");
  });
});

describe('quote', () => {
  it('quotes values and cuts long ones short', () => {
    expect(quote('x')).toBe("'x'");
    expect(quote(12)).toBe("'12'");
    expect(quote('a'.repeat(200))).toBe(`'${'a'.repeat(79)}…'`);
  });
});
