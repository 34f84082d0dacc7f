#!/usr/bin/env node
// The Open Inference Protocol over gRPC from Node.js, with @grpc/grpc-js and @grpc/proto-loader
// loading the service's own proto (service/api/v2_grpc/grpc_predict_v2.proto, package
// `inference`):
//
//   cd examples && npm ci && node grpc_client.js 127.0.0.1:8001 [PROTO]
//
// Asks ServerReady (until ready) and ModelMetadata, then scores a few batches with ModelInfer: tensors as raw
// little-endian bytes in `raw_input_contents` (FP64 and FP32), and once as typed `contents`
// (fp32_contents, int64_contents, fp64_contents). The outputs come back in
// `raw_output_contents`, one little-endian entry per output; they are decoded here. Last, a
// model that does not exist, to show a gRPC error (NOT_FOUND and the server's message).
// Prints one JSON object: `ready`, `metadata`, `calls` (each one's `request` as sent and its
// `response` with the outputs decoded into `data`) and `error`.

"use strict";

const path = require("node:path");
const { setTimeout: sleep } = require("node:timers/promises");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const PROTO = path.join(__dirname, "..", "service", "api", "v2_grpc", "grpc_predict_v2.proto");
const CALL_SECONDS = 30; // every call's deadline
const READY_SECONDS = 300; // how long to wait for ServerReady (a cold start compiles kernels)

// Each datatype: bytes per element, the `contents` field that carries it, and little-endian
// writing and reading of one element.
const DATATYPES = {
  FP32: {
    size: 4,
    contents: "fp32_contents",
    write: (buffer, value, at) => buffer.writeFloatLE(value, at),
    read: (buffer, at) => buffer.readFloatLE(at),
  },
  FP64: {
    size: 8,
    contents: "fp64_contents",
    write: (buffer, value, at) => buffer.writeDoubleLE(value, at),
    read: (buffer, at) => buffer.readDoubleLE(at),
  },
  INT32: {
    size: 4,
    contents: "int_contents",
    write: (buffer, value, at) => buffer.writeInt32LE(value, at),
    read: (buffer, at) => buffer.readInt32LE(at),
  },
  INT64: {
    size: 8,
    contents: "int64_contents",
    write: (buffer, value, at) => buffer.writeBigInt64LE(BigInt(value), at),
    read: (buffer, at) => Number(buffer.readBigInt64LE(at)),
  },
};

const LOGITS = [2.0, 0.5, -1.0, 0.25, 0.1, 0.2, 3.0, -0.5, -1.5, 0.75, 0.3, 1.25];
const MSE_INPUTS = [
  { name: "predictions", shape: [3, 2], data: [0.5, 1.0, 2.0, -1.0, 1.25, 3.5] },
  { name: "targets", shape: [3, 2], data: [0.0, 1.5, 2.5, -1.0, 1.0, 2.0] },
  { name: "sample_weight", shape: [3], data: [1.0, 3.0, 0.5] },
];

// The batches scored. `outputs` lists the outputs asked for, in the order wanted (none: all).
const CASES = [
  {
    id: "mse-fp64",
    model: "mse",
    encoding: "raw",
    parameters: { reduction: "mean" },
    inputs: MSE_INPUTS.map((input) => ({ ...input, datatype: "FP64" })),
    outputs: ["per_sample", "cost", "gradient", "sum", "weight_sum"],
  },
  {
    id: "mse-fp32",
    model: "mse",
    encoding: "raw",
    parameters: { reduction: "sum" },
    inputs: MSE_INPUTS.map((input) => ({ ...input, datatype: "FP32" })),
    outputs: ["cost", "gradient", "weight_sum"],
  },
  {
    id: "bce-logits",
    model: "binary_cross_entropy",
    encoding: "raw",
    parameters: { from_logits: true, label_smoothing: 0.1, reduction: "mean" },
    inputs: [
      { name: "predictions", shape: [2, 3], datatype: "FP64", data: [1.5, -0.5, 0.0, -2.0, 0.75, 3.0] },
      { name: "targets", shape: [2, 3], datatype: "FP64", data: [1.0, 0.0, 1.0, 0.0, 1.0, 1.0] },
      { name: "mask", shape: [2, 3], datatype: "FP64", data: [1.0, 1.0, 0.0, 1.0, 0.5, 1.0] },
    ],
    outputs: [],
  },
  {
    id: "cross-entropy",
    model: "cross_entropy",
    encoding: "raw",
    parameters: { from_logits: true, label_smoothing: 0.05, reduction: "mean" },
    inputs: [
      { name: "predictions", shape: [3, 4], datatype: "FP64", data: LOGITS },
      { name: "targets", shape: [3], datatype: "INT64", data: [0, 2, 3] },
      { name: "class_weight", shape: [4], datatype: "FP64", data: [1.0, 2.0, 0.5, 1.5] },
    ],
    outputs: ["per_sample", "cost", "gradient", "sum", "weight_sum"],
  },
  {
    id: "cross-entropy-typed",
    model: "cross_entropy",
    encoding: "contents",
    parameters: { from_logits: true, ignore_index: 1, reduction: "sum" },
    inputs: [
      { name: "predictions", shape: [3, 4], datatype: "FP32", data: LOGITS },
      { name: "targets", shape: [3], datatype: "INT64", data: [1, 2, 0] },
      { name: "class_weight", shape: [4], datatype: "FP64", data: [1.0, 2.0, 0.5, 1.5] },
    ],
    outputs: ["per_sample", "cost", "gradient", "sum", "weight_sum"],
  },
];

/** One value as an InferParameter: bool, string, int64 for whole numbers, double otherwise. */
function parameter(value) {
  if (typeof value === "boolean") return { bool_param: value };
  if (typeof value === "string") return { string_param: value };
  if (Number.isInteger(value)) return { int64_param: value };
  return { double_param: value };
}

/** An InferParameter's value (proto-loader's `oneofs` names the field that is set). */
function parameterValue(message) {
  return message.parameter_choice ? message[message.parameter_choice] : null;
}

function elementCount(shape) {
  return shape.reduce((count, size) => count * Number(size), 1);
}

/** A tensor's values (row-major, flat) as little-endian bytes of `datatype`. */
function encode(values, datatype) {
  const { size, write } = DATATYPES[datatype];
  const buffer = Buffer.alloc(values.length * size);
  values.forEach((value, index) => write(buffer, value, index * size));
  return buffer;
}

/** Little-endian bytes of `datatype` as numbers, checked against the tensor's shape. */
function decode(bytes, datatype, shape) {
  const { size, read } = DATATYPES[datatype];
  const count = elementCount(shape);
  if (bytes.length !== count * size) {
    throw new Error(`${bytes.length} bytes for shape [${shape}] of ${datatype}`);
  }
  return Array.from({ length: count }, (_, index) => read(bytes, index * size));
}

/** A case as a ModelInferRequest: data in raw_input_contents or in each input's contents. */
function inferRequest(batch) {
  const request = {
    id: batch.id,
    model_name: batch.model,
    parameters: {},
    inputs: [],
    outputs: batch.outputs.map((name) => ({ name })),
    raw_input_contents: [],
  };
  for (const [key, value] of Object.entries(batch.parameters)) {
    request.parameters[key] = parameter(value);
  }
  for (const input of batch.inputs) {
    const tensor = { name: input.name, datatype: input.datatype, shape: input.shape };
    if (batch.encoding === "raw") {
      request.raw_input_contents.push(encode(input.data, input.datatype));
    } else {
      tensor.contents = { [DATATYPES[input.datatype].contents]: input.data };
    }
    request.inputs.push(tensor);
  }
  return request;
}

/** A ModelInferResponse with its outputs' raw bytes decoded into `data`. */
function readResponse(response) {
  const raw = response.raw_output_contents;
  if (raw.length !== response.outputs.length) {
    throw new Error(`${raw.length} raw_output_contents for ${response.outputs.length} outputs`);
  }
  const parameters = {};
  for (const [key, value] of Object.entries(response.parameters)) {
    parameters[key] = parameterValue(value);
  }
  return {
    model_name: response.model_name,
    model_version: response.model_version,
    id: response.id,
    parameters,
    outputs: response.outputs.map((output, index) => ({
      name: output.name,
      datatype: output.datatype,
      shape: output.shape,
      data: decode(raw[index], output.datatype, output.shape),
    })),
  };
}

function loadService(protoPath) {
  const definition = protoLoader.loadSync(protoPath, {
    keepCase: true, // the proto's field names, as the protocol spells them
    longs: Number, // int64 fields (shapes, counts) as numbers: every one here is small
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).inference.GRPCInferenceService;
}

function deadline() {
  return Date.now() + CALL_SECONDS * 1000;
}

/** One unary call as a promise, within the deadline. */
function call(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, { deadline: deadline() }, (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

/** Asks ServerReady until it answers ready (ModelInfer is UNAVAILABLE while the server warms up). */
async function waitUntilReady(client) {
  const until = Date.now() + READY_SECONDS * 1000;
  for (;;) {
    const { ready } = await call(client, "ServerReady", {});
    if (ready) return ready;
    if (Date.now() > until) throw new Error(`not ready after ${READY_SECONDS} s`);
    await sleep(250);
  }
}

/** The status of a call that must fail: its code (number and name) and the server's message. */
async function failure(client, method, request) {
  try {
    await call(client, method, request);
  } catch (error) {
    if (error.code === undefined) throw error;
    return { code: error.code, status: grpc.status[error.code], details: error.details };
  }
  throw new Error(`${method} succeeded where it should have failed`);
}

async function main() {
  const address = process.argv[2] || "127.0.0.1:8001";
  const Service = loadService(process.argv[3] || PROTO);
  const client = new Service(address, grpc.credentials.createInsecure());
  try {
    await new Promise((resolve, reject) =>
      client.waitForReady(deadline(), (error) => (error ? reject(error) : resolve())),
    );
    const ready = await waitUntilReady(client);
    const metadata = await call(client, "ModelMetadata", { name: "cross_entropy", version: "" });
    const calls = [];
    for (const batch of CASES) {
      const response = await call(client, "ModelInfer", inferRequest(batch));
      calls.push({ request: batch, response: readResponse(response) });
    }
    const error = await failure(client, "ModelInfer", {
      model_name: "no_such_loss",
      inputs: [{ name: "predictions", datatype: "FP64", shape: [1], contents: { fp64_contents: [0.5] } }],
    });
    const printed = {
      ready,
      metadata: {
        name: metadata.name,
        versions: metadata.versions,
        platform: metadata.platform,
        inputs: metadata.inputs,
        outputs: metadata.outputs,
      },
      calls,
      error,
    };
    process.stdout.write(JSON.stringify(printed) + "\n");
  } finally {
    client.close();
  }
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
