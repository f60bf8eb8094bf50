// Usage: node speech.mjs PORT OUTFILE [JSON-PARAMS]
// Calls client.audio.speech.create() of the official openai package against
// podgen on 127.0.0.1:PORT and writes the audio bytes to OUTFILE.  Prints a
// JSON line with the status and headers; exits 1 on any error.
import fs from "node:fs";
import OpenAI from "openai";

const [port, out, paramsJson] = process.argv.slice(2);
if (!port || !out) {
  console.error("usage: node speech.mjs PORT OUTFILE [JSON-PARAMS]");
  process.exit(2);
}
const params = Object.assign(
  {
    model: "tts-1",
    voice: "alloy",
    input: "Hello from the official client.",
    response_format: "mp3",
  },
  paramsJson ? JSON.parse(paramsJson) : {},
);

const client = new OpenAI({
  apiKey: "x",
  baseURL: `http://127.0.0.1:${port}/v1`,
  maxRetries: 0,
  timeout: 60000,
});

try {
  const response = await client.audio.speech.create(params);
  const buf = Buffer.from(await response.arrayBuffer());
  fs.writeFileSync(out, buf);
  console.log(
    JSON.stringify({
      status: response.status,
      content_type: response.headers.get("content-type"),
      request_id: response.headers.get("x-request-id"),
      bytes: buf.length,
    }),
  );
} catch (err) {
  console.log(
    JSON.stringify({
      error: String(err && err.message),
      status: err && err.status,
      body: err && err.error,
    }),
  );
  process.exit(1);
}
