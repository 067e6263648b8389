import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { count, hostName, isLoopback, MISSING, pathSetting, port, secretRef } from '../fields.js';

/**
 * `database:` where the clinic keeps what it receives: SQLite (encrypted, one intake process) or
 * PostgreSQL (several). Only the section of the kind chosen must be there, and complete.
 */

const sqliteSection = z.strictObject({
  path: pathSetting('the clinic database file'),
  key: secretRef('the database key', ['file', 'credential']),
});

/**
 * libpq's sslmode values (PostgreSQL 15 documentation, section 34.19.3 "Protection Provided in Different
 * Modes") that say what they do: allow and prefer fall back to no encryption without saying so, and are
 * left out.
 */
const SSL_MODES = ['disable', 'require', 'verify-ca', 'verify-full'] as const;

const postgresSection = z
  .strictObject({
    host: z
      .string()
      .refine((h) => isAbsolute(h) || hostName().safeParse(h).success)
      .describe(
        "a host name, an IP address, or the folder of the server's Unix socket (/var/run/postgresql)",
      ),
    port: port(),
    database: z.string().min(1).max(63).describe('the database name (at most 63 characters)'),
    user: z.string().min(1).max(63).describe('the role to log in as (at most 63 characters)'),
    password: secretRef("the role's password", ['file', 'credential']).optional(),
    ssl: z.strictObject({
      mode: z.enum(SSL_MODES).describe('disable, require, verify-ca or verify-full (libpq sslmode)'),
      ca: pathSetting("the CA certificate (PEM) that signed the server's certificate").optional(),
    }),
    poolSize: count(1, 1000, 'connections per process at most'),
  })
  .superRefine((pg, ctx) => {
    const local = isAbsolute(pg.host) || isLoopback(pg.host);
    if (pg.ssl.mode === 'disable' && !local) {
      ctx.addIssue({
        code: 'custom',
        path: ['ssl', 'mode'],
        message: `disable sends readings and the password to ${pg.host} unencrypted; use verify-full (or connect through a Unix socket or loopback)`,
      });
    }
  });

export type SqliteSettings = z.output<typeof sqliteSection>;
export type PostgresSettings = z.output<typeof postgresSection>;

export type DatabaseSettings =
  | { readonly kind: 'sqlite'; readonly sqlite: SqliteSettings }
  | { readonly kind: 'postgres'; readonly postgres: PostgresSettings };

export const databaseSection = z
  .strictObject({
    kind: z.enum(['sqlite', 'postgres']).describe('sqlite (one intake process) or postgres (several)'),
    sqlite: sqliteSection.optional(),
    postgres: postgresSection.optional(),
  })
  .superRefine((db, ctx) => {
    if (db[db.kind] === undefined) {
      const needs =
        db.kind === 'postgres'
          ? 'host, database, user, and password unless the server needs none'
          : 'path, key';
      ctx.addIssue({
        code: 'custom',
        path: [db.kind],
        message: `database.kind is ${db.kind}, so a database.${db.kind} section is needed (${needs})`,
        params: MISSING,
      });
    }
  })
  .transform(
    (db): DatabaseSettings =>
      db.kind === 'sqlite'
        ? { kind: 'sqlite', sqlite: db.sqlite as SqliteSettings }
        : { kind: 'postgres', postgres: db.postgres as PostgresSettings },
  );
