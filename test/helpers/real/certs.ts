// Certificates the TLS tests make for themselves with openssl: a self-signed
// one (a server's own, or a CA's), and a leaf signed by such a CA.
import { writeFileSync } from 'node:fs';
import { nsExec } from '../netns.js';

const EC_P256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export interface CertFiles {
  key: string;
  cert: string;
}

/** A self-signed P-256 certificate valid for 2 days; san as openssl writes it ("DNS:a,IP:b"). */
export async function selfSignedCert(ns: string, files: CertFiles, cn: string, san?: string): Promise<void> {
  await nsExec(ns, [
    'openssl',
    'req',
    '-x509',
    ...EC_P256,
    '-days',
    '2',
    '-subj',
    `/CN=${cn}`,
    ...(san ? ['-addext', `subjectAltName=${san}`] : []),
    '-keyout',
    files.key,
    '-out',
    files.cert,
  ]);
}

/** A P-256 leaf for san, signed by the CA; the request and the extension file go beside the key. */
export async function caSignedCert(ns: string, ca: CertFiles, files: CertFiles, cn: string, san: string): Promise<void> {
  const csr = `${files.key}.csr`;
  const ext = `${files.key}.ext`;
  await nsExec(ns, ['openssl', 'req', ...EC_P256, '-keyout', files.key, '-out', csr, '-subj', `/CN=${cn}`]);
  writeFileSync(ext, `subjectAltName=${san}\n`);
  await nsExec(ns, ['openssl', 'x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '2', '-out', files.cert, '-extfile', ext]);
}
