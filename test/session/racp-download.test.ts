import { describe, expect, it } from 'vitest';
import { encodeRacpReportAll } from '../../src/gatt/glucose-racp.js';
import { toHex } from '../../src/gatt/hex.js';
import { RacpDownload, withinRange } from '../../src/session/racp-download.js';

/** The request rules of a RACP download (src/session/racp-download.ts) that the simulator does not reach. */
const response = (responseCodeName: 'success' | 'no-records-found' | 'operator-not-supported') =>
  ({
    opCode: 'response-code',
    operator: 'null',
    requestOpCode: 1,
    requestOpCodeName: 'report-stored-records',
    responseCode: 0,
    responseCodeName,
  }) as const;
const hex = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : toHex(bytes));

describe('RacpDownload', () => {
  it('a meter that refuses the range request is asked for all records', () => {
    const d = new RacpDownload({ sequence: 100, anchor: 'm1-a' });
    expect(hex(d.firstRequest())).toBe(hex(withinRange(100, 100 + 0x7fff)));
    d.noteControlPoint(response('operator-not-supported'));
    expect(hex(d.next())).toBe(hex(encodeRacpReportAll()));
    // A "report all" moves the resume point only once it ended with success (the order is the meter's).
    expect(d.holdsBack).toBe(true);
    expect(d.measurement(65535, 'm1-x', false)).toEqual({ deliver: true });
    expect(d.measurement(1, 'm1-y', false)).toEqual({ deliver: true });
    expect(d.measurement(0, 'm1-z', false)).toEqual({ deliver: true });
    expect(d.settled()).toBeUndefined();
    d.noteControlPoint(response('success'));
    expect(d.settled()).toEqual({ sequence: 1, anchor: 'm1-y' }); // serially the newest (RFC 1982)
    expect(d.next()).toBeUndefined();
  });

  it('a meter that falls silent (no response code) ends the download: nothing more is asked', () => {
    const d = new RacpDownload({ sequence: 100, anchor: 'm1-a' });
    d.firstRequest();
    expect(d.next()).toBeUndefined();
  });

  it('a resume point without an anchor is matched by its number alone', () => {
    const d = new RacpDownload({ sequence: 5, anchor: null });
    d.firstRequest();
    expect(d.measurement(5, 'm1-whatever', true)).toEqual({ deliver: false });
    expect(d.context(5)).toEqual({ deliver: false });
    expect(d.measurement(6, 'm1-b', true)).toEqual({ deliver: true });
    expect(d.context(6)).toEqual({ deliver: true, progress: { sequence: 6, anchor: 'm1-b' } });
    d.noteControlPoint(response('success'));
    expect(d.next()).toBeUndefined();
  });

  it('the record under the resume point missing but later ones there (the meter dropped its oldest): kept', () => {
    const d = new RacpDownload({ sequence: 5, anchor: 'm1-a' });
    d.firstRequest();
    expect(d.measurement(9, 'm1-i', false).deliver).toBe(true);
    d.noteControlPoint(response('success'));
    expect(d.next()).toBeUndefined();
  });

  it('a window that starts at 65535 asks [65535, 65535] and then [0, 32766]', () => {
    const d = new RacpDownload({ sequence: 0xffff, anchor: 'm1-a' });
    expect(hex(d.firstRequest())).toBe(hex(withinRange(0xffff, 0xffff)));
    d.measurement(0xffff, 'm1-a', false);
    d.noteControlPoint(response('success'));
    expect(hex(d.next())).toBe(hex(withinRange(0, 0x7ffe)));
    d.noteControlPoint(response('no-records-found'));
    expect(d.next()).toBeUndefined(); // the anchor was there: nothing new, not "ask for everything"
  });
});
