// Verifies a sessiond token the way a third-party Node program would: with
// the jose library, against the JWK Set served at a URL.
//
//	node interop/verify.mjs JWKS_URL TOKEN ISSUER
//
// Exit status 0 and the payload as JSON on stdout when the token is valid;
// 1 and the reason on stderr when it is not.
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [url, token, issuer] = process.argv.slice(2);
if (!url || !token || !issuer) {
  console.error('usage: node verify.mjs JWKS_URL TOKEN ISSUER');
  process.exit(2);
}

try {
  const jwks = createRemoteJWKSet(new URL(url));
  const { payload, protectedHeader } = await jwtVerify(token, jwks, {
    issuer,
    typ: 'session+jwt',
    algorithms: ['EdDSA', 'ES256', 'RS256'],
  });
  console.log(JSON.stringify({ header: protectedHeader, payload }));
} catch (err) {
  console.error(`invalid: ${err.code ?? err.name}: ${err.message}`);
  process.exit(1);
}
