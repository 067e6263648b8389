import { X509Certificate as OpenSslCertificate } from 'node:crypto';

/**
 * Why a certificate's bytes are not one DER-encoded certificate, or undefined when they are.
 *
 * RFC 5280 4.1 requires a certificate to be DER (ITU-T X.690 10: definite lengths in their shortest form), and
 * the JavaScript ASN.1 parser under @peculiar/x509 is lenient: it read a certificate whose outer SEQUENCE
 * length was shortened, or that had bytes after it, as if nothing were wrong. A certificate that passes here
 * meets two independent checks:
 *
 * 1. the outer SEQUENCE header is DER (tag 0x30, shortest definite length) and its length covers exactly the
 *    given bytes: nothing missing, nothing after it;
 * 2. OpenSSL, the library every TLS peer of the project uses (through Node's crypto.X509Certificate, i.e.
 *    d2i_X509), parses it, and encodes it back to the very same bytes. So a certificate OpenSSL refuses is
 *    refused here too, and one whose encoding OpenSSL would silently normalise is refused as well.
 */
export function certificateDerProblem(der: Uint8Array): string | undefined {
  const outer = outerSequenceProblem(der);
  if (outer) return outer;
  let reencoded: Uint8Array;
  try {
    reencoded = new OpenSslCertificate(Buffer.from(der.buffer, der.byteOffset, der.byteLength)).raw;
  } catch {
    return 'OpenSSL cannot parse it';
  }
  if (Buffer.compare(reencoded, der) !== 0) return 'it is not DER: OpenSSL encodes it differently';
  return undefined;
}

/** Checks the outermost TLV: a constructed SEQUENCE whose DER length spans the input exactly (X.690 8.1.3, 10.1). */
function outerSequenceProblem(der: Uint8Array): string | undefined {
  if (der.length < 2 || der[0] !== 0x30) return 'it does not start with a SEQUENCE';
  const first = der[1] as number;
  let length: number;
  let header: number;
  if (first < 0x80) {
    length = first;
    header = 2;
  } else {
    const count = first & 0x7f;
    // 0x80 is the indefinite form (BER only); more than 4 length octets would describe a certificate over 4 GiB.
    if (count === 0 || count > 4) return 'its outer length is not a DER definite length';
    if (der.length < 2 + count) return 'its outer length is cut off';
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + (der[2 + i] as number);
    // DER: the long form only for lengths over 127, and with no leading zero octet (X.690 10.1, 8.1.3.5).
    if (length < 0x80 || der[2] === 0) return 'its outer length is not in the shortest form (not DER)';
    header = 2 + count;
  }
  const total = header + length;
  if (total > der.length) return `its outer length says ${total} bytes but there are ${der.length}`;
  if (total < der.length) return `${der.length - total} byte(s) follow the certificate's outer length`;
  return undefined;
}
