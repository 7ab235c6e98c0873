// audit.mjs URL: runs the graphql-http server audits (the reference implementation of
// GraphQL over HTTP) against URL and prints one JSON array of {id, name, status, reason}.
// cmd/plaza's TestGraphQLOverHTTPAudit runs it and judges the results.
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
const results = [];
for (const audit of serverAudits({ url, fetchFn: fetch })) {
  const r = await audit.fn();
  results.push({ id: audit.id, name: audit.name, status: r.status, reason: r.reason ?? '' });
}
console.log(JSON.stringify(results));
