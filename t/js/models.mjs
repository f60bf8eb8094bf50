// Usage: node models.mjs PORT
// client.models.list() and client.models.retrieve() of the official openai
// package against podgen on 127.0.0.1:PORT; prints one JSON line with what
// the client got (the ids, a retrieved model, the error of an unknown
// one); exits 1 when a call that should work throws.
import OpenAI from "openai";

const [port] = process.argv.slice(2);
const client = new OpenAI({
  apiKey: "x",
  baseURL: `http://127.0.0.1:${port}/v1`,
  maxRetries: 0,
  timeout: 30000,
});

const out = {};
try {
  const ids = [];
  for await (const m of client.models.list()) {
    ids.push(m.id);
    if (m.object !== "model" || typeof m.created !== "number") {
      throw new Error(`bad model object ${JSON.stringify(m)}`);
    }
  }
  out.ids = ids;
  out.retrieved = await client.models.retrieve("gpt-4o-mini-tts-2025-12-15");
} catch (err) {
  console.log(JSON.stringify({ error: String(err && err.message) }));
  process.exit(1);
}
try {
  await client.models.retrieve("gpt-9");
  out.unknown = { thrown: false };
} catch (err) {
  out.unknown = {
    thrown: true,
    name: err && err.constructor && err.constructor.name,
    status: err && err.status,
    body: err && err.error,
  };
}
console.log(JSON.stringify(out));
