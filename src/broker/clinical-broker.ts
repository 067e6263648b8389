import type { AddressInfo, Socket } from 'node:net';
import { createServer, type SecureContextOptions, type Server, type TLSSocket } from 'node:tls';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import {
  CrlFile,
  type CrlState,
  checkClientCertificate,
  PkiError,
  TLS_MIN_VERSION,
  TLS12_AEAD_CIPHERS,
} from '../pki/index.js';
import { type ClientIdentity, mayConnect, mayPublish, maySubscribe } from './acl.js';
import {
  checkDurableSubscribers,
  type DurableSubscriber,
  provisionDurableSubscribers,
} from './durable-subscribers.js';
import { BrokerError } from './errors.js';
import { deliverInCounterOrder, type OrderedDelivery } from './ordered-delivery.js';
import { type BrokerPersistence, openLevelPersistence, type PersistenceOptions } from './persistence.js';
import { publishBeforeAck } from './publish-before-ack.js';
import { tlsRefusalReason } from './tls-refusal.js';

/**
 * The embedded clinical broker: aedes (MQTT 3.1.1) behind a Node TLS server that demands a client certificate
 * from the configured CA (requestCert + rejectUnauthorized, TLS 1.2 minimum, TLS 1.2 suites limited to
 * TLS12_AEAD_CIPHERS), optionally checked against the CA's CRL. The certificate is the identity; the ACL in
 * acl.ts decides, the MQTT client id included. Every refusal (TLS handshake, CONNECT, PUBLISH, SUBSCRIBE) is
 * reported through `onRefusal`, which the runtime sends to the log and the audit log; a TLS refusal names the
 * real reason (tls-refusal.ts). Listens on 127.0.0.1 unless told otherwise.
 *
 * With `persistence`, sessions and QoS 1 queues live in LevelDB (persistence.ts), their values sealed with
 * AES-256-GCM under the store key (value-cipher.ts), every QoS 1 PUBLISH is
 * queued for the sessions it matches before its PUBACK is sent (publish-before-ack.ts), and the
 * `durableSubscribers` (the clinic intake) have their sessions written before the listener accepts anyone
 * (durable-subscribers.ts): so nothing a hub saw acknowledged is lost when the broker is killed. Without it,
 * sessions are in memory (tests that need no disk) and a broker restart loses every queue.
 */
export interface BrokerOptions {
  readonly ca: string | Buffer;
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  readonly host?: string;
  readonly port?: number;
  /**
   * The CA's CRL (PEM, as `rpm-gateway certs revoke` writes it). Checked for changes at every new connection
   * and reloaded then, so a revocation takes effect at the next handshake without a restart. Absent file:
   * nothing is revoked yet. Once loaded, OpenSSL checks every client against it, and refuses every client
   * once its nextUpdate has passed (reason crl-expired): re-sign it in time (`rpm-gateway certs crl`).
   */
  readonly crlFile?: string;
  /** Told when the CRL file is loaded, changes, or becomes unusable (the last good list then stays in force). */
  readonly onCrl?: (state: CrlState) => void;
  /** Maps the verified client certificate (DER) to an identity; see src/pki identityOf. */
  readonly identify: (certificateDer: Buffer) => ClientIdentity | undefined;
  /** Largest PUBLISH payload accepted; larger ones are refused before anyone sees them. */
  readonly maxPayloadBytes?: number;
  readonly onRefusal?: (refusal: Refusal) => void;
  /** Sessions, queues and retained messages on disk. Absent: in memory, lost when the process ends. */
  readonly persistence?: PersistenceOptions;
  /**
   * Clinic receivers whose persistent sessions exist from the start, before any hub connects (the intake).
   * They may only connect with CleanSession 0: a clean session would discard the queue kept for them.
   */
  readonly durableSubscribers?: readonly DurableSubscriber[];
  /**
   * Told when the store cannot be written (BROKER_PERSISTENCE). A message that could not be queued is not
   * acknowledged and its hub is disconnected, so it sends the message again once it reconnects. Told too of
   * each stored value that fails authentication when read (BROKER_PERSISTENCE_CORRUPT): that entry is skipped
   * (a queued message not delivered, a session without that subscription) and everything else is served.
   */
  readonly onError?: (error: BrokerError) => void;
}

export interface Refusal {
  readonly stage: 'tls' | 'connect' | 'publish' | 'subscribe';
  readonly reason: string;
  /** The certificate identity when known (never a measurement or a device address). */
  readonly identity?: string;
  readonly detail?: string;
}

function refusedError(reason: string): AuthenticateError {
  // CONNACK return code 5: not authorized (MQTT 3.1.1, table 3.1).
  return Object.assign(new Error(reason), { returnCode: 5 as const });
}

export class ClinicalBroker {
  private aedes: Aedes | undefined;
  private server: Server | undefined;
  private readonly identities = new WeakMap<Client, ClientIdentity>();
  private readonly sockets = new Set<Socket>();
  private address: AddressInfo | undefined;
  private persistence: BrokerPersistence | undefined;
  private durableIds = new Set<string>();
  private ordered: OrderedDelivery | undefined;

  constructor(private readonly options: BrokerOptions) {}

  async start(): Promise<AddressInfo> {
    const durable = this.options.durableSubscribers ?? [];
    checkDurableSubscribers(durable);
    const persistence = this.options.persistence
      ? await openLevelPersistence(this.options.persistence, (error) => this.options.onError?.(error))
      : undefined;
    let aedes: Aedes | undefined;
    try {
      aedes = await Aedes.createBroker({
        // One slow subscriber must not stall delivery to everyone (aedes README, "drainTimeout").
        drainTimeout: 30_000,
        connectTimeout: 10_000,
        ...(persistence ? { persistence } : {}),
      });
      // Before the listener exists, so no hub can publish before the intake's session does.
      // aedes' typings omit `persistence`; it is the instance passed above, or aedes' in-memory default.
      const sessions = (aedes as unknown as { persistence: BrokerPersistence }).persistence;
      await provisionDurableSubscribers(sessions, durable);
      return await this.listen(aedes, persistence);
    } catch (error) {
      if (aedes) {
        const closing = aedes;
        await new Promise<void>((resolve) => closing.close(() => resolve()));
      }
      await persistence?.destroy();
      throw error;
    }
  }

  private async listen(aedes: Aedes, persistence: BrokerPersistence | undefined): Promise<AddressInfo> {
    this.durableIds = new Set((this.options.durableSubscribers ?? []).map((s) => s.clientId));
    // First: publishBeforeAck below captures aedes.publish, and must publish through the ordering one.
    this.ordered = deliverInCounterOrder(aedes);
    // 'error' is missing from aedes' typed events; aedes.js emits it when a store write fails (DoEnqueues).
    (aedes as unknown as NodeJS.EventEmitter).on('error', (error: Error) => this.storeFailed(error));
    aedes.authenticate = (client, _username, _password, done) => this.authenticate(client, done);
    aedes.authorizePublish = publishBeforeAck(
      aedes,
      (client, packet, done) => {
        const identity = client ? this.identities.get(client) : undefined;
        if (!identity) return done(new Error('not authenticated'));
        const limit = this.options.maxPayloadBytes ?? 256 * 1024;
        if (packet.payload.length > limit) {
          this.refuse({ stage: 'publish', reason: `payload over ${limit} bytes`, identity: label(identity) });
          return done(new Error('payload too large'));
        }
        const decision = mayPublish(identity, packet.topic, packet.retain);
        if (!decision.allowed) {
          this.refuse({
            stage: 'publish',
            reason: decision.reason,
            identity: label(identity),
            detail: packet.topic,
          });
          return done(new Error(decision.reason));
        }
        done(null);
      },
      (error) => this.options.onError?.(storeError(error)),
    );
    aedes.authorizeSubscribe = (client, subscription, done) => {
      const identity = this.identities.get(client);
      const decision = identity
        ? maySubscribe(identity, subscription.topic)
        : { allowed: false as const, reason: 'not authenticated' };
      if (!decision.allowed) {
        this.refuse({
          stage: 'subscribe',
          reason: decision.reason,
          ...(identity ? { identity: label(identity) } : {}),
          detail: subscription.topic,
        });
        return done(null, null); // a negative SUBACK for that filter; the connection stays up
      }
      done(null, subscription);
    };
    const crl = this.options.crlFile
      ? new CrlFile(this.options.crlFile, this.options.ca, this.options.onCrl)
      : undefined;
    let crlPem = crl?.list()?.pem;
    const server = createServer(
      {
        ...this.secureContextOptions(crlPem),
        requestCert: true,
        rejectUnauthorized: true,
        // Without it a CONNECT took ~51 ms instead of ~6.5 ms (Nagle on the TLS socket, measured here).
        noDelay: true,
      },
      (socket) => {
        // OpenSSL accepts a certificate without any extendedKeyUsage for any purpose; ours must say
        // clientAuth. Checked before aedes reads a byte, so such a client never reaches MQTT.
        const peer = socket.getPeerCertificate(false);
        const purpose = peer?.raw ? checkClientCertificate(peer) : new Error('no certificate');
        if (purpose) {
          this.refuse({ stage: 'tls', reason: 'wrong-purpose', detail: 'no clientAuth extended key usage' });
          socket.destroy();
          return;
        }
        aedes.handle(socket);
      },
    );
    if (crl) {
      // Before the TLS listener's own 'connection' handler builds the TLSSocket from the shared context, so this
      // very connection is verified against the CRL on disk now. statSync is one system call per connection.
      server.prependListener('connection', () => {
        const pem = crl.list()?.pem;
        if (pem === crlPem) return;
        try {
          server.setSecureContext(this.secureContextOptions(pem));
          crlPem = pem;
        } catch (error) {
          // The CA verified the list (CrlFile), so OpenSSL should read it; if not, the last one stays.
          this.options.onCrl?.({
            status: 'unusable',
            error: new PkiError('PKI_BAD_CRL', 'OpenSSL could not load the CRL', { cause: error }),
          });
        }
      });
    }
    // Every open connection, so suspend() can drop them (server.close() alone only stops new ones).
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    server.on('tlsClientError', (error, socket) => {
      const { reason, detail } = tlsRefusalReason(
        socket.authorizationError,
        (error as NodeJS.ErrnoException).code,
      );
      this.refuse({ stage: 'tls', reason, detail });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port ?? 8883, this.options.host ?? '127.0.0.1', () => resolve());
    });
    this.aedes = aedes;
    this.persistence = persistence;
    this.server = server;
    this.address = server.address() as AddressInfo;
    return this.address;
  }

  /**
   * aedes emits 'error' when it cannot look up the sessions a message goes to (aedes.js, DoEnqueues) or
   * cannot read the wills: that publish never completes, so its PUBACK is never sent. Every connection is
   * dropped so that no hub waits on it forever; the hubs resend what was not acknowledged when they reconnect.
   * (A failed queue write itself fails that one publish: publishBeforeAck reports it, aedes drops the hub.)
   */
  private storeFailed(error: Error): void {
    this.options.onError?.(storeError(error));
    // That publish never reaches the bus: later ones must not wait for it (ordered-delivery.ts).
    this.ordered?.release();
    for (const socket of this.sockets) socket.destroy();
  }

  /**
   * Takes the broker off the network, as an outage looks from outside: it stops listening and every
   * connection drops, without an MQTT DISCONNECT. The broker itself stays up with its sessions, so a clinic
   * subscriber with a persistent session (clean: false) gets the messages published while it was away once it
   * is back, as from a clinic broker with persistent storage. resume() listens again on the same address.
   */
  async suspend(): Promise<void> {
    const server = this.server;
    if (!server?.listening) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  /** Listens again where start() did, after suspend(). */
  async resume(): Promise<AddressInfo> {
    const server = this.server;
    const address = this.address;
    if (!server || !address) throw new Error('broker not started');
    if (!server.listening) {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(address.port, address.address, () => {
          server.removeListener('error', reject);
          resolve();
        });
      });
    }
    return server.address() as AddressInfo;
  }

  async stop(): Promise<void> {
    const server = this.server;
    const aedes = this.aedes;
    const persistence = this.persistence;
    this.server = undefined;
    this.aedes = undefined;
    this.persistence = undefined;
    if (server?.listening) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of this.sockets) socket.destroy();
      await closed;
    }
    if (aedes) await new Promise<void>((resolve) => aedes.close(() => resolve()));
    // aedes.close() leaves its persistence open; LevelDB's lock must go so the store can be opened again.
    await persistence?.destroy();
  }

  /** The aedes instance, for in-process subscribers (the clinic receiver when embedded). */
  get mqtt(): Aedes {
    if (!this.aedes) throw new Error('broker not started');
    return this.aedes;
  }

  private authenticate(
    client: Client,
    done: (error: AuthenticateError | null, success: boolean | null) => void,
  ): void {
    const socket = client.conn as unknown as TLSSocket;
    const certificate =
      typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate(false) : undefined;
    const raw = certificate && 'raw' in certificate ? certificate.raw : undefined;
    let identity: ClientIdentity | undefined;
    try {
      identity = raw ? this.options.identify(raw) : undefined;
    } catch {
      identity = undefined;
    }
    let decision = mayConnect(identity, client.id);
    if (decision.allowed && client.clean && this.durableIds.has(client.id)) {
      // CleanSession 1 would delete the session kept for it, queue included (MQTT 3.1.1 section 3.1.2.4).
      decision = {
        allowed: false,
        reason: `durable subscriber ${client.id} must connect with CleanSession 0`,
      };
    }
    if (!decision.allowed) {
      this.refuse({
        stage: 'connect',
        reason: decision.reason,
        ...(identity ? { identity: label(identity) } : {}),
      });
      done(refusedError(decision.reason), false);
      return;
    }
    this.identities.set(client, identity as ClientIdentity);
    done(null, true);
  }

  private secureContextOptions(crl: string | undefined): SecureContextOptions {
    return {
      ca: this.options.ca,
      cert: this.options.cert,
      key: this.options.key,
      minVersion: TLS_MIN_VERSION,
      ciphers: TLS12_AEAD_CIPHERS,
      ...(crl === undefined ? {} : { crl }),
    };
  }

  private refuse(refusal: Refusal): void {
    this.options.onRefusal?.(refusal);
  }
}

function storeError(cause: Error): BrokerError {
  return new BrokerError('BROKER_PERSISTENCE', 'the broker store could not be written', { cause });
}

function label(identity: ClientIdentity): string {
  return `${identity.role}:${identity.id}`;
}
