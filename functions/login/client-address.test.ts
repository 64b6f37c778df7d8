import { describe, expect, it } from 'vitest';
import { clientAddress, counted } from './client-address';

describe('client address', () => {
  it('is the socket peer unless proxies are trusted, whatever X-Forwarded-For says', () => {
    expect(clientAddress('none', '6.6.6.6', '203.0.113.9')).toBe('203.0.113.9');
    expect(clientAddress('none', undefined, '::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(clientAddress('none', undefined, undefined)).toBe('unknown');
  });

  it('behind trusted proxies, is the address the ingress appended, not what the client sent first', () => {
    // client-sent, then ingress, activator, queue-proxy's view
    expect(clientAddress('private', '6.6.6.6, 203.0.113.9, 10.1.2.3, 10.4.5.6', '127.0.0.1')).toBe('203.0.113.9');
    expect(clientAddress('private', '203.0.113.9, 10.1.2.3', '127.0.0.1')).toBe('203.0.113.9');
    expect(clientAddress('private', undefined, '127.0.0.1')).toBe('127.0.0.1');
  });

  it('stops at an entry no proxy of ours would write', () => {
    expect(clientAddress('private', '6.6.6.6, not-an-address, 10.1.2.3', '127.0.0.1')).toBe('10.1.2.3');
  });

  it('counts an IPv6 client by its /64, so one host cannot be many', () => {
    expect(clientAddress('private', '2001:db8:0:1::5, 10.0.0.1', '127.0.0.1')).toBe('2001:db8:0:1::/64');
    expect(counted('2001:0db8:0000:0001:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:0:1::/64');
    expect(counted('2001:db8::')).toBe('2001:db8:0:0::/64');
    expect(counted('192.0.2.1')).toBe('192.0.2.1');
  });
});
