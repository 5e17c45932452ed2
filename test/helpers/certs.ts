// Test certificates minted at run time (@peculiar/x509 on Node's WebCrypto): a CA and leaves with
// any validity window, URI SANs and CA flag the tests need. Nothing here is ever committed.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface TestCa {
  readonly name: string;
  readonly pem: string;
  readonly cert: x509.X509Certificate;
  readonly keys: CryptoKeyPair;
}

export async function createCa(
  cn = 'agent-authz test CA',
  org = 'agent-authz tests',
): Promise<TestCa> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const name = `CN=${cn}, O=${org}`;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name,
    keys,
    signingAlgorithm: ALG,
    notBefore: new Date(Date.now() - 3600_000),
    notAfter: new Date(Date.now() + 30 * 86400_000),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
    ],
  });
  return { name, pem: cert.toString('pem'), cert, keys };
}

export interface LeafOptions {
  uris?: string[];
  dns?: string[];
  cn?: string;
  notBefore?: Date;
  notAfter?: Date;
  isCa?: boolean;
}

export interface TestLeaf {
  readonly pem: string;
  /** lowercase hex SHA-256 of the DER */
  readonly fingerprint: string;
}

export async function issueLeaf(ca: TestCa, opts: LeafOptions = {}): Promise<TestLeaf> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const names: x509.JsonGeneralName[] = [
    ...(opts.uris ?? []).map((v) => ({ type: 'url' as const, value: v })),
    ...(opts.dns ?? []).map((v) => ({ type: 'dns' as const, value: v })),
  ];
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(opts.isCa === true, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([
      x509.ExtendedKeyUsage.clientAuth,
      x509.ExtendedKeyUsage.serverAuth,
    ]),
  ];
  if (names.length > 0)
    extensions.push(new x509.SubjectAlternativeNameExtension(names, opts.cn === undefined));
  const cert = await x509.X509CertificateGenerator.create({
    subject: opts.cn === undefined ? '' : `CN=${opts.cn}`,
    issuer: ca.cert.subject,
    notBefore: opts.notBefore ?? new Date(Date.now() - 3600_000),
    notAfter: opts.notAfter ?? new Date(Date.now() + 7 * 86400_000),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    extensions,
  });
  const der = new Uint8Array(cert.rawData);
  const digest = Buffer.from(await webcrypto.subtle.digest('SHA-256', der)).toString('hex');
  return { pem: cert.toString('pem'), fingerprint: digest };
}
