import { describe, expect, it } from 'vitest';
import { gatewayTopics, isGatewayId, parseTopic, topicFilter, topicFor } from '../../src/wire/topics.js';
import { expectWireError } from './support.js';

describe('topics', () => {
  it('builds the five topics of a gateway', () => {
    expect(gatewayTopics('gw-test-01')).toEqual({
      obs: 'rpm/v1/gw-test-01/obs',
      alert: 'rpm/v1/gw-test-01/alert',
      status: 'rpm/v1/gw-test-01/status',
      cmd: 'rpm/v1/gw-test-01/cmd',
      cmdResult: 'rpm/v1/gw-test-01/cmd/res',
    });
    expect(topicFor('abc', 'cmd/res')).toBe('rpm/v1/abc/cmd/res');
  });

  it('parses every topic it builds', () => {
    for (const [kind, topic] of Object.entries(gatewayTopics('gw-1-x'))) {
      const parsed = parseTopic(topic);
      expect(parsed.gatewayId).toBe('gw-1-x');
      expect(parsed.kind).toBe(kind === 'cmdResult' ? 'cmd/res' : kind);
    }
  });

  it('gives subscription filters with a single-level wildcard', () => {
    expect(topicFilter('obs')).toBe('rpm/v1/+/obs');
    expect(topicFilter('status', 'gw-test-01')).toBe('rpm/v1/gw-test-01/status');
  });

  it.each([
    ['abc', true],
    ['gw-test-01', true],
    ['0ab', true],
    [`a${'b'.repeat(62)}`, true],
    ['ab', false],
    [`a${'b'.repeat(63)}`, false],
    ['-ab', false],
    ['Gw-test', false],
    ['gw_test', false],
    ['gw/test', false],
    ['gw+', false],
    ['gw#1', false],
    ['', false],
  ])('gateway id %j valid: %s', (id, valid) => {
    expect(isGatewayId(id)).toBe(valid);
    if (!valid) expectWireError(() => topicFor(id, 'obs'), 'WIRE_INVALID_FIELD');
  });

  it.each([
    'rpm/v1/gw-test-01',
    'rpm/v1/gw-test-01/',
    'rpm/v1/gw-test-01/obs/extra',
    'rpm/v1/gw-test-01/res',
    'rpm/v2/gw-test-01/obs',
    'rpm/v1/+/obs',
    'rpm/v1/GW/obs',
    '/rpm/v1/gw-test-01/obs',
    'rpm/v1//obs',
  ])('refuses %j', (topic) => {
    expectWireError(() => parseTopic(topic), 'WIRE_BAD_TOPIC');
  });
});
