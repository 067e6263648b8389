import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';

interface Listed {
  readonly id: string;
  readonly evidence: string;
  readonly fixtures: { readonly capture: number; readonly constructed: number } | null;
}

describe('rpm-gateway drivers', () => {
  it('says which drivers are unverified: no real capture of a measurement among their fixtures', async () => {
    const { code, stdout } = await runCli(['drivers', '--json']);
    expect(code).toBe(0);
    const listed = stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Listed);
    const byId = new Map(listed.map((d) => [d.id, d]));
    // BerryMed's vectors are hand-written unit-test packets and hand-computed frames: no capture.
    expect(byId.get('vendor/berrymed-bm1000')).toMatchObject({
      evidence: 'unverified',
      fixtures: { capture: 0 },
    });
    // Contec: the OxiVis log of a CMS50D-BT and the EMAY captures.
    expect(byId.get('vendor/contec-cms50d-bt')?.evidence).toBe('verified');
    expect(byId.get('vendor/contec-cms50d-bt')?.fixtures?.capture).toBeGreaterThanOrEqual(3);
    // PLXS: the nRF Connect capture quoted in Stack Overflow question 71264072.
    expect(byId.get('sig/pulse-oximeter')?.evidence).toBe('verified');
    for (const d of listed) expect(['verified', 'unverified']).toContain(d.evidence);
  });

  it('prints the status after each driver and the fixture counts below it', async () => {
    const { stdout } = await runCli(['drivers']);
    expect(stdout).toMatch(/^vendor\/berrymed-bm1000@\S+ .* unverified$/m);
    expect(stdout).toMatch(/^vendor\/contec-cms50d-bt@\S+ .* verified$/m);
    expect(stdout).toMatch(/^ {4}fixtures: 0 captured, \d+ constructed$/m);
  });
});
