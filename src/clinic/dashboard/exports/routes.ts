import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { MappingOptions } from '../../fhir/mapping.js';
import { mayView } from '../access.js';
import type { LiveSession } from '../auth/staff-auth.js';
import type { PageRoutesContext } from '../pages/page-routes.js';
import { messagePageFor, notFoundPage } from '../pages/pages.js';
import { csvChunks } from './csv.js';
import { ExportError } from './errors.js';
import { checkFhirSize, fhirChunks } from './fhir.js';
import { type ExportRequest, exportRequest } from './range.js';

export interface ExportRoutesOptions extends PageRoutesContext {
  /** The FHIR export's identifier systems (fhir.patientIdentifierSystem, fhir.systemBase); absent: CSV only. */
  readonly fhir?: MappingOptions;
}

/**
 * GET /patients/:mrn/export?from=&to=&format=csv|fhir: a patient's readings over [from, to) as a download,
 * from the form on the patient page. A GET (it changes nothing but the audit log), so it needs no CSRF token;
 * the session cookie is SameSite=Strict, so another site's link arrives without it and lands on the login.
 *
 * - Access: who may see the patient (access.ts); anyone else gets the 404 page of a patient that does not
 *   exist, the same bytes as GET /patients/:mrn, before the query is even read.
 * - A bad query: 400, a page with the ExportError's message and code (docs/errors.md).
 * - CSV streams from the store a page at a time (pages.ts), any range up to 31 days; FHIR is one Bundle of at
 *   most MAX_FHIR_MEASUREMENTS measurements (fhir.ts).
 * - Audit: `patient.export-started` (who, MRN, range, format, IP) before the first byte leaves, so no
 *   download goes unrecorded even if the process dies during it; `patient.exported` with the measurements and
 *   rows sent when the response ends, `complete: false` (and the error's code, if any) when it ended early: the
 *   browser went away or the store failed mid-way.
 * - Headers: the app's (Cache-Control no-store and the rest), Content-Disposition attachment with a file
 *   name of ASCII letters, digits, `.`, `_` and `-` only (RFC 6266 section 4.3): `readings_<MRN>_<from>_<to>`,
 *   times in UTC. The MRN is in it so that a clinician who downloads several patients can tell the files apart;
 *   it is the clinic's own identifier, already in the page's URL and the browser's history, and no other
 *   patient data (no name, no value) is.
 */
export function registerExportRoutes(app: FastifyInstance, options: ExportRoutesOptions): void {
  const { staff, clinic, audit, clock } = options;

  app.get<{ Params: { mrn: string }; Querystring: Record<string, string | undefined> }>(
    '/patients/:mrn/export',
    // A HEAD would run the export (and audit it) to send no body: not offered.
    { exposeHeadRoute: false },
    async (request, reply) => {
      const session = await options.signedIn(request, reply);
      if (!session) return reply;
      const { mrn } = request.params;
      if (!(await mayView(session.user, mrn, staff, clinic))) {
        return html(reply, notFoundPage(options.chrome(session, 'Not found')), 404);
      }
      let query: ExportRequest;
      try {
        query = exportRequest(request.query, options.timeZone);
        if (query.format === 'fhir' && options.fhir === undefined) {
          throw new ExportError(
            'EXPORT_FHIR_NOT_CONFIGURED',
            "FHIR downloads need the clinic's identifier systems (fhir.patientIdentifierSystem and fhir.systemBase in the configuration); the CSV download is available.",
          );
        }
      } catch (error) {
        if (error instanceof ExportError) return refused(reply, session, mrn, error);
        throw error;
      }
      const actor = session.user.username;
      const details = {
        mrn,
        from: new Date(query.from).toISOString(),
        to: new Date(query.to).toISOString(),
        format: query.format,
        ip: request.ip,
      };
      const tally = { measurements: 0, rows: 0, error: undefined as string | undefined };
      // Recorded once: at 'finish' (the whole response was handed to the operating system) as complete, or at
      // 'close' without it (the client went away, or the store failed and the response was cut) as not.
      const whenDone = () => {
        let recorded = false;
        const record = (complete: boolean) => {
          if (recorded) return;
          recorded = true;
          audit.record('patient.exported', actor, {
            ...details,
            measurements: tally.measurements,
            rows: tally.rows,
            complete: complete && tally.error === undefined,
            ...(tally.error === undefined ? {} : { error: tally.error }),
          });
        };
        reply.raw.once('finish', () => record(true));
        reply.raw.once('close', () => record(false));
      };
      const range = { mrn, from: query.from, to: query.to };
      const name = fileName(mrn, query);
      const fhir = query.format === 'fhir' ? options.fhir : undefined;
      if (fhir !== undefined) {
        try {
          await checkFhirSize(clinic, range);
        } catch (error) {
          if (error instanceof ExportError) return refused(reply, session, mrn, error);
          throw error;
        }
      }

      audit.record('patient.export-started', actor, details);
      whenDone();
      const chunks =
        fhir === undefined
          ? csvChunks(clinic, range, tally)
          : fhirChunks(clinic, range, fhir, clock.now(), tally);
      // Pulled by the response: the next page is read only when the last one has gone out (backpressure).
      async function* body(): AsyncGenerator<string> {
        try {
          yield* chunks;
        } catch (error) {
          // The response is cut (the client sees an incomplete download); the audit entry says why.
          tally.error = (error as { code?: unknown }).code?.toString() ?? 'EXPORT_FAILED';
          throw error;
        }
      }
      return (
        reply
          .type(
            fhir === undefined
              ? 'text/csv; charset=utf-8; header=present'
              : 'application/fhir+json; charset=utf-8; fhirVersion=4.0',
          )
          .header(
            'Content-Disposition',
            `attachment; filename="${name}.${fhir === undefined ? 'csv' : 'json'}"`,
          )
          // One piece waits in the stream at most (objectMode counts pieces): the socket holds the rest.
          .send(Readable.from(body(), { objectMode: true, highWaterMark: 1 }))
      );
    },
  );

  const refused = (reply: FastifyReply, session: LiveSession, mrn: string, error: ExportError) =>
    html(
      reply,
      messagePageFor(options.chrome(session, 'Export not possible'), {
        heading: 'Export not possible',
        text: error.message,
        code: error.code,
        back: { href: `/patients/${encodeURIComponent(mrn)}`, text: 'Back to the patient' },
      }),
      400,
    );
}

function html(reply: FastifyReply, body: string, code: number): FastifyReply {
  return reply.code(code).type('text/html; charset=utf-8').send(body);
}

/** `readings_<MRN>_<from>_<to>`, the MRN reduced to safe characters, times as 20260110T080000Z. */
export function fileName(mrn: string, range: { readonly from: number; readonly to: number }): string {
  const safe = mrn.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64);
  const stamp = (ms: number) =>
    new Date(ms)
      .toISOString()
      .replace(/\.\d{3}Z$/, 'Z')
      .replace(/[-:]/g, '');
  return `readings_${safe}_${stamp(range.from)}_${stamp(range.to)}`;
}
