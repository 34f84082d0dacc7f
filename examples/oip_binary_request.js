#!/usr/bin/env node
// A binary Open Inference Protocol v2 request built by hand: no npm packages, only Node.js.
//
//   node examples/oip_binary_request.js http://127.0.0.1:8000 [FP64|FP32]
//
// Scores sparse_categorical_cross_entropy on three samples of four classes. The request is
// Triton's binary tensor data extension: a JSON inference header whose inputs declare
// `parameters.binary_data_size`, followed by the raw little-endian tensors in the same order;
// the `Inference-Header-Content-Length` header says where the JSON ends. The response is
// parsed the same way (outputs asked for in binary come after its JSON header). Prints one
// JSON object: what was sent (`request`) and what came back (`response`, arrays decoded).
// Spec: https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_binary_data.md

"use strict";

const http = require("node:http");

const HEADER_LENGTH = "inference-header-content-length";
const WRITERS = {
  FP32: { size: 4, write: (view, at, value) => view.setFloat32(at, value, true) },
  FP64: { size: 8, write: (view, at, value) => view.setFloat64(at, value, true) },
  INT32: { size: 4, write: (view, at, value) => view.setInt32(at, value, true) },
  INT64: { size: 8, write: (view, at, value) => view.setBigInt64(at, BigInt(value), true) },
};
const READERS = {
  FP32: (view, at) => view.getFloat32(at, true),
  FP64: (view, at) => view.getFloat64(at, true),
  INT32: (view, at) => view.getInt32(at, true),
  INT64: (view, at) => Number(view.getBigInt64(at, true)),
};

/** A tensor's values (row-major, flat) as little-endian bytes of `datatype`. */
function encodeTensor(values, datatype) {
  const { size, write } = WRITERS[datatype];
  const bytes = Buffer.alloc(values.length * size);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  values.forEach((value, index) => write(view, index * size, value));
  return bytes;
}

/** Inputs -> { body, headerLength }: the JSON header, then each input's bytes in order. */
function buildRequest(inputs, outputs, parameters, id) {
  const chunks = inputs.map((input) => encodeTensor(input.data, input.datatype));
  const header = {
    id,
    parameters,
    inputs: inputs.map((input, index) => ({
      name: input.name,
      shape: input.shape,
      datatype: input.datatype,
      parameters: { binary_data_size: chunks[index].length },
    })),
    outputs,
  };
  const headerBytes = Buffer.from(JSON.stringify(header), "utf8");
  return { body: Buffer.concat([headerBytes, ...chunks]), headerLength: headerBytes.length };
}

/** The response's JSON header with every output's values decoded into `data`. */
function parseResponse(body, headerLengthText) {
  const headerLength = headerLengthText === undefined ? body.length : Number(headerLengthText);
  const header = JSON.parse(body.subarray(0, headerLength).toString("utf8"));
  let offset = headerLength;
  for (const output of header.outputs) {
    const size = output.parameters && output.parameters.binary_data_size;
    if (size === undefined) continue; // JSON output: `data` is already there
    const itemSize = WRITERS[output.datatype].size;
    const view = new DataView(body.buffer, body.byteOffset + offset, size);
    output.data = Array.from({ length: size / itemSize }, (_, i) =>
      READERS[output.datatype](view, i * itemSize),
    );
    offset += size;
  }
  if (offset !== body.length) throw new Error(`binary outputs end at ${offset} of ${body.length}`);
  return header;
}

function post(url, body, headers) {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: "POST", headers }, (response) => {
      const chunks = [];
      response.on("data", (chunk) => chunks.push(chunk));
      response.on("end", () => resolve({ response, body: Buffer.concat(chunks) }));
      response.on("error", reject);
    });
    request.on("error", reject);
    request.end(body);
  });
}

async function main() {
  const base = process.argv[2] || "http://127.0.0.1:8000";
  const floatType = process.argv[3] || "FP64";
  if (!(floatType === "FP64" || floatType === "FP32")) throw new Error("FP64 or FP32");
  const model = "sparse_categorical_cross_entropy";
  const inputs = [
    {
      name: "predictions", // logits, (N, C) = (3, 4)
      shape: [3, 4],
      datatype: floatType,
      data: [2.0, 0.5, -1.0, 0.25, 0.1, 0.2, 3.0, -0.5, -1.5, 0.75, 0.3, 1.25],
    },
    { name: "targets", shape: [3], datatype: "INT64", data: [0, 2, 3] },
    { name: "sample_weight", shape: [3], datatype: floatType, data: [1.0, 0.5, 2.0] },
    { name: "class_weight", shape: [4], datatype: "FP64", data: [1.0, 2.0, 0.5, 1.5] },
  ];
  const parameters = { from_logits: true, reduction: "mean" };
  const outputs = [
    { name: "cost", parameters: { binary_data: false } },
    { name: "per_sample", parameters: { binary_data: true } },
    { name: "gradient", parameters: { binary_data: true } },
    { name: "sum", parameters: { binary_data: true } },
    { name: "weight_sum", parameters: { binary_data: false } },
  ];
  const { body, headerLength } = buildRequest(inputs, outputs, parameters, "node-1");
  const { response, body: answer } = await post(`${base}/v2/models/${model}/infer`, body, {
    "Content-Type": "application/octet-stream",
    "Content-Length": body.length,
    "Inference-Header-Content-Length": headerLength,
  });
  if (response.statusCode !== 200) {
    throw new Error(`HTTP ${response.statusCode}: ${answer.toString("utf8")}`);
  }
  const parsed = parseResponse(answer, response.headers[HEADER_LENGTH]);
  process.stdout.write(
    JSON.stringify({ request: { model, inputs, parameters }, response: parsed }) + "\n",
  );
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
