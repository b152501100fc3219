// ort_run.js — run an ONNX file with onnxruntime, the judge of the ONNX files cnn.c writes.
//
//   node ort_run.js MODEL.onnx IN.npy OUT.npy [--threads N] [--inputs name=file.npy ...]
//     feeds IN.npy to the model's first input (and each --inputs file to the input it names),
//     runs it once and writes the first output to OUT.npy.
//   node ort_run.js --bench MODEL.onnx IN.npy [--threads N] [--runs R] [--warmup W] [--inputs ...]
//     runs W untimed and R timed runs and prints one JSON line:
//     {"runs":R,"median_ms":..,"p99_ms":..,"images_per_s":..}, images being IN.npy's first dimension.
//
// onnxruntime-node comes from $CNN_ORT_DIR/node_modules when CNN_ORT_DIR is set (scripts/ort_deps.sh
// DIR installs it there), else from node's usual search. It runs on the CPU execution provider with
// N intra-op threads (default 1) and one inter-op thread, all graph optimizations on.
// Arrays are .npy files of float32, little-endian, C order. Any error prints one line,
// "ort_run: <message>", on stderr and exits with status 1.
'use strict';
const fs = require('fs');
const path = require('path');

const USAGE = 'usage: node ort_run.js MODEL.onnx IN.npy OUT.npy [--threads N] [--inputs name=file.npy ...]\n' +
    '       node ort_run.js --bench MODEL.onnx IN.npy [--threads N] [--runs R] [--warmup W]';

function fail(message) {
    throw new Error(message);
}

// A whole number >= min, from the command line.
function count(option, text, min) {
    if (!/^\d+$/.test(text || '') || Number(text) < min) fail(`${option} needs a whole number >= ${min}, not '${text}'`);
    return Number(text);
}

function parseArgs(argv) {
    const args = { bench: false, threads: 1, runs: 10, warmup: 2, inputs: [], files: [] };
    let benchOnly = null;
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === '--bench') args.bench = true;
        else if (a === '--threads') args.threads = count(a, argv[++i], 1);
        else if (a === '--runs') { args.runs = count(a, argv[++i], 1); benchOnly = a; }
        else if (a === '--warmup') { args.warmup = count(a, argv[++i], 0); benchOnly = a; }
        else if (a === '--inputs') {
            // Every following name=file argument, up to the next option.
            while (i + 1 < argv.length && !argv[i + 1].startsWith('--')) {
                const item = argv[++i];
                const eq = item.indexOf('=');
                if (eq <= 0 || eq === item.length - 1) fail(`--inputs takes name=file.npy, not '${item}'`);
                args.inputs.push({ name: item.slice(0, eq), file: item.slice(eq + 1) });
            }
        } else if (a.startsWith('--')) fail(`unknown option ${a}\n${USAGE}`);
        else args.files.push(a);
    }
    if (args.files.length !== (args.bench ? 2 : 3)) fail(USAGE);
    if (benchOnly && !args.bench) fail(`${benchOnly} goes only with --bench`);
    return args;
}

// The header of a .npy file is a Python dict literal such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }. This reads that literal: strings,
// True/False, integers and tuples of them, nothing else.
function parseHeaderDict(text) {
    let pos = 0;
    const skip = () => { while (pos < text.length && /\s/.test(text[pos])) pos++; };
    const expect = (ch) => {
        skip();
        if (text[pos] !== ch) fail(`expected '${ch}' at ${pos} in ${text.trim()}`);
        pos++;
    };
    function value() {
        skip();
        const ch = text[pos];
        if (ch === "'" || ch === '"') {
            const end = text.indexOf(ch, pos + 1);
            if (end < 0) fail('unterminated string');
            const s = text.slice(pos + 1, end);
            pos = end + 1;
            return s;
        }
        if (ch === '(') {
            pos++;
            const items = [];
            for (;;) {
                skip();
                if (text[pos] === ')') { pos++; return items; }
                items.push(value());
                skip();
                if (text[pos] === ',') pos++;
                else if (text[pos] !== ')') fail('bad tuple');
            }
        }
        const m = /^(True|False|\d+)/.exec(text.slice(pos));
        if (!m) fail(`unexpected text at ${pos} in ${text.trim()}`);
        pos += m[0].length;
        return m[0] === 'True' ? true : m[0] === 'False' ? false : Number(m[0]);
    }
    const dict = {};
    expect('{');
    for (;;) {
        skip();
        if (text[pos] === '}') { pos++; break; }
        const key = value();
        if (typeof key !== 'string') fail('a key is not a string');
        expect(':');
        dict[key] = value();
        skip();
        if (text[pos] === ',') pos++;
        else if (text[pos] !== '}') fail('expected , or }');
    }
    skip();
    if (pos !== text.length) fail('text after the dict');
    return dict;
}

// Reads a .npy file of float32 (versions 1.0, 2.0 and 3.0) into { dims, data }.
function readNpy(file) {
    const buf = fs.readFileSync(file);
    if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') fail(`${file}: not a .npy file`);
    const major = buf[6];
    if (major < 1 || major > 3) fail(`${file}: .npy version ${major}.${buf[7]} is not supported`);
    // Version 1.0 has a 2-byte header length, 2.0 and 3.0 a 4-byte one; 3.0's header is UTF-8.
    const start = major === 1 ? 10 : 12;
    if (buf.length < start) fail(`${file}: truncated .npy header`);
    const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
    if (buf.length < start + headerLen) fail(`${file}: truncated .npy header`);
    let header;
    try {
        header = parseHeaderDict(buf.toString(major === 3 ? 'utf8' : 'latin1', start, start + headerLen));
    } catch (e) {
        fail(`${file}: bad .npy header: ${e.message}`);
    }
    if (header.descr !== '<f4') fail(`${file}: dtype '${header.descr}' is not float32 ('<f4')`);
    if (header.fortran_order !== false) fail(`${file}: only C order arrays are supported (fortran_order False)`);
    const dims = header.shape;
    if (!Array.isArray(dims) || !dims.every(Number.isSafeInteger)) fail(`${file}: shape is not a tuple of integers`);
    const size = dims.reduce((a, b) => a * b, 1);
    const offset = start + headerLen;
    if (buf.length - offset !== size * 4) {
        fail(`${file}: shape (${dims.join(', ')}) needs ${size * 4} bytes of data, the file has ${buf.length - offset}`);
    }
    // readFloatLE rather than a Float32Array view: the data may be unaligned, and this works on any host.
    const data = new Float32Array(size);
    for (let i = 0; i < size; i++) data[i] = buf.readFloatLE(offset + 4 * i);
    return { dims, data };
}

// Writes a float32 array as a version 1.0 .npy file, the way NumPy does: the header is padded with
// spaces and ends in '\n', so that the data starts at a multiple of 64 bytes.
function writeNpy(file, dims, data) {
    const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
    let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`;
    header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
    const buf = Buffer.alloc(10 + header.length + 4 * data.length);
    buf.write('\x93NUMPY\x01\x00', 0, 'latin1');
    buf.writeUInt16LE(header.length, 8);
    buf.write(header, 10, 'latin1');
    for (let i = 0; i < data.length; i++) buf.writeFloatLE(data[i], 10 + header.length + 4 * i);
    fs.writeFileSync(file, buf);
}

function loadOrt() {
    const dir = process.env.CNN_ORT_DIR;
    const where = dir ? path.resolve(dir, 'node_modules', 'onnxruntime-node') : 'onnxruntime-node';
    try {
        return require(where);
    } catch (e) {
        fail(`cannot load ${where} (install it with scripts/ort_deps.sh DIR and set CNN_ORT_DIR=DIR): ${e.message}`);
    }
}

// The tensors to feed: IN.npy for the first input, --inputs files for the ones they name.
function makeFeeds(ort, session, inFile, extra) {
    const first = session.inputNames[0];
    const files = { [first]: inFile };
    for (const { name, file } of extra) {
        if (!session.inputNames.includes(name)) fail(`the model has no input '${name}' (it has ${session.inputNames.join(', ')})`);
        if (name in files) fail(`input '${name}' is given twice`);
        files[name] = file;
    }
    const feeds = {};
    for (const name of session.inputNames) {
        if (!(name in files)) fail(`input '${name}' has no data: give it with --inputs ${name}=file.npy`);
        const { dims, data } = readNpy(files[name]);
        feeds[name] = new ort.Tensor('float32', data, dims);
    }
    return feeds;
}

// Milliseconds one run takes.
async function timeRun(session, feeds) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function main() {
    const args = parseArgs(process.argv.slice(2));
    const [modelFile, inFile, outFile] = args.files;
    const ort = loadOrt();
    const session = await ort.InferenceSession.create(modelFile, {
        executionProviders: ['cpu'],
        intraOpNumThreads: args.threads,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
    });
    const feeds = makeFeeds(ort, session, inFile, args.inputs);
    if (args.bench) {
        for (let i = 0; i < args.warmup; i++) await session.run(feeds);
        const ms = [];
        for (let i = 0; i < args.runs; i++) ms.push(await timeRun(session, feeds));
        ms.sort((a, b) => a - b);
        const mid = ms.length >> 1;
        const median = ms.length % 2 ? ms[mid] : (ms[mid - 1] + ms[mid]) / 2;
        const p99 = ms[Math.ceil(0.99 * ms.length) - 1]; // nearest rank
        const dims = feeds[session.inputNames[0]].dims;
        const images = dims.length ? dims[0] : 1;
        const round = (x) => Number(x.toFixed(4));
        console.log(JSON.stringify({
            runs: args.runs, median_ms: round(median), p99_ms: round(p99), images_per_s: round(images * 1000 / median),
        }));
    } else {
        const results = await session.run(feeds);
        const name = session.outputNames[0];
        const out = results[name];
        if (out.type !== 'float32') fail(`output '${name}' is ${out.type}, not float32`);
        writeNpy(outFile, out.dims, out.data);
    }
}

main().catch((e) => {
    // One line, whatever onnxruntime's message looks like.
    process.stderr.write(`ort_run: ${String(e && e.message ? e.message : e).replace(/\s*\n\s*/g, ' ').trim()}\n`);
    process.exit(1);
});
