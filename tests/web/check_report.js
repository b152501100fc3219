#!/usr/bin/env node
// check_report.js — opens a page written by `cnn report` in headless Chromium, as a reader would, and
// fails on what the reader would see broken. It checks structure and rendering, not the numbers shown.
//
// usage: node check_report.js REPORT.html SCREENSHOT.png [--require id1,id2,...] [--modules DIR]
//   DIR is a node_modules folder holding playwright-core (scripts/web_deps.sh); without --modules,
//   NODE_PATH is searched. CHROMIUM names the browser (default /usr/bin/chromium).
// Exit 0: every check passed (one summary line); 1: the report has problems (one line each);
// 2: the check could not run (bad usage, chromium or playwright-core missing).
'use strict';

const fs = require('fs');
const path = require('path');
const { pathToFileURL } = require('url');

const SECTIONS = ['model', 'curves', 'confusion', 'mistakes', 'filters', 'features', 'saliency'];
const VIEWPORT = { width: 1366, height: 900 };
// A blank page is one flat colour; a real one has text and plots: at least this share of pixels
// differs from the page background and at least this many colours appear.
const MIN_INK = 0.01;
const MIN_COLOURS = 16;
const SELF_CONTAINED = '(the report must be self-contained)';

function usage(msg) {
    console.error(`check_report: ${msg}`);
    console.error('usage: node check_report.js REPORT.html SCREENSHOT.png ' +
        '[--require id1,id2,...] [--modules DIR]');
    process.exit(2);
}

function parseArgs(argv) {
    const opt = { files: [], require: SECTIONS, modules: null };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === '--require' || a === '--modules') {
            if (i + 1 >= argv.length) usage(`${a} needs a value`);
            const v = argv[++i];
            if (a === '--modules') opt.modules = v;
            else opt.require = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
        } else if (a.startsWith('--')) {
            usage(`unknown option ${a}`);
        } else {
            opt.files.push(a);
        }
    }
    if (opt.files.length !== 2) usage('REPORT.html and SCREENSHOT.png are needed');
    return opt;
}

// The tools, or exit 2 naming what is missing and how to install it.
function loadTools(opt) {
    const exe = process.env.CHROMIUM || '/usr/bin/chromium';
    const missing = [];
    try {
        fs.accessSync(exe, fs.constants.X_OK);
    } catch (e) {
        missing.push(`chromium (${exe}): install it with scripts/deps.sh chromium, or set CHROMIUM`);
    }
    let pw = null;
    try {
        pw = require(opt.modules ? path.resolve(opt.modules, 'playwright-core') : 'playwright-core');
    } catch (e) {
        const from = opt.modules ? `in ${path.resolve(opt.modules)}`
            : `on NODE_PATH (${process.env.NODE_PATH || 'unset'})`;
        missing.push(`playwright-core ${from}: install it with scripts/web_deps.sh DIR ` +
            'and pass --modules DIR/node_modules');
    }
    if (missing.length) {
        for (const m of missing) console.error(`check_report: missing ${m}`);
        process.exit(2);
    }
    return { exe, chromium: pw.chromium };
}

// The functions below up to inkOf run inside the page (page.evaluate): each stands alone.

// Required sections are there and hold more than a heading; every section has an <h2>.
function checkSections(required) {
    const problems = [];
    const missing = [];
    for (const id of required) {
        const sec = document.getElementById(id);
        if (!sec) {
            problems.push(`section #${id}: absent`);
            continue;
        }
        const body = sec.cloneNode(true);
        body.querySelectorAll('h1, h2, h3').forEach((h) => h.remove());
        if (body.textContent.trim() === '' && !body.querySelector('img, svg, canvas, table, figure'))
            problems.push(`section #${id}: empty (nothing but a heading)`);
        if (sec.querySelector('.missing')) missing.push(id);
    }
    const sections = [...document.querySelectorAll('section')];
    sections.forEach((sec, i) => {
        const name = sec.id ? '#' + sec.id : 'number ' + (i + 1);
        if (!sec.querySelector('h2')) problems.push(`section ${name}: no <h2> heading`);
    });
    return { problems, missing, sections: sections.filter((s) => s.id).length };
}

// Every figure has a caption; a picture outside one carries its own title (alt, <title>,
// aria-label); every image decoded.
function checkPictures() {
    const problems = [];
    const where = (el) => {
        const sec = el.closest('section[id]');
        return sec ? ` in #${sec.id}` : '';
    };
    const name = (el) => {
        const cls = el.classList.length ? '.' + [...el.classList].join('.') : '';
        return `<${el.tagName.toLowerCase()}${el.id ? '#' + el.id : cls}>${where(el)}`;
    };
    const hasText = (el) => !!el && el.textContent.trim() !== '';
    const captioned = (el) => {
        const fig = el.closest('figure');
        return !!fig && hasText(fig.querySelector('figcaption'));
    };
    const figures = [...document.querySelectorAll('figure')];
    figures.forEach((fig, i) => {
        if (!hasText(fig.querySelector('figcaption')))
            problems.push(`figure ${i + 1}${where(fig)}: no <figcaption> title`);
    });
    for (const img of document.images) {
        if (!captioned(img) && !(img.getAttribute('alt') || '').trim())
            problems.push(`${name(img)}: no alt text or figure caption`);
        if (img.naturalWidth === 0) {
            const src = (img.getAttribute('src') || '').slice(0, 40);
            problems.push(`${name(img)}: image failed to decode (src ${src}...)`);
        }
    }
    for (const svg of document.querySelectorAll('svg')) {
        if (svg.parentElement.closest('svg')) continue;
        const titled = (svg.getAttribute('aria-label') || '').trim() ||
            [...svg.children].some((c) => c.tagName === 'title' && hasText(c));
        if (!captioned(svg) && !titled)
            problems.push(`${name(svg)}: no <title>, aria-label or figure caption`);
    }
    return { problems, figures: figures.length, images: document.images.length };
}

// No horizontal scrollbar; the page background is the body's colour where it is opaque, else the
// root's, else the canvas white.
function checkLayout() {
    const problems = [];
    const root = document.documentElement;
    if (root.scrollWidth > root.clientWidth + 1) {
        const wide = [...document.body.querySelectorAll('*')]
            .find((el) => el.getBoundingClientRect().right > root.clientWidth + 1);
        const sec = wide && wide.closest('section[id]');
        const what = !wide ? '' : `, first too wide: <${wide.tagName.toLowerCase()}>` +
            (sec ? ` in #${sec.id}` : '');
        problems.push(`horizontal scrollbar: the page is ${root.scrollWidth} px wide ` +
            `in a ${root.clientWidth} px window${what}`);
    }
    const opaque = (el) => {
        const m = getComputedStyle(el).backgroundColor.match(/[\d.]+/g);
        return m && (m.length < 4 || Number(m[3]) === 1) ? m.slice(0, 3).map(Number) : null;
    };
    const background = (document.body && opaque(document.body)) || opaque(root) || [255, 255, 255];
    return { problems, background };
}

// Share of pixels unlike the background and number of distinct colours of a PNG, read back through
// a canvas in a blank page so that the report's own styles and scripts play no part.
async function inkOf(context, png, background) {
    const page = await context.newPage();
    try {
        return await page.evaluate(async ({ url, bg }) => {
            const img = new Image();
            img.src = url;
            await img.decode();
            const canvas = document.createElement('canvas');
            canvas.width = img.naturalWidth;
            canvas.height = img.naturalHeight;
            const ctx = canvas.getContext('2d', { willReadFrequently: true });
            ctx.drawImage(img, 0, 0);
            const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
            const colours = new Set();
            let ink = 0;
            for (let i = 0; i < px.length; i += 4) {
                if (px[i] !== bg[0] || px[i + 1] !== bg[1] || px[i + 2] !== bg[2]) ink++;
                colours.add((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]);
            }
            const n = px.length / 4;
            return { ink: ink / n, colours: colours.size, width: canvas.width, height: canvas.height };
        }, { url: 'data:image/png;base64,' + png.toString('base64'), bg: background });
    } finally {
        await page.close();
    }
}

// A context in which nothing but file: and data: URLs loads, and a page in it that records every
// console error or warning, page error and request for anything but the report into problems.
async function openReport(browser, url, problems) {
    const context = await browser.newContext({
        viewport: VIEWPORT,
        deviceScaleFactor: 1,
        serviceWorkers: 'block',
    });
    await context.route('**/*', (route) => {
        const u = route.request().url();
        const local = u.startsWith('file:') || u.startsWith('data:');
        return local ? route.continue() : route.abort('blockedbyclient');
    });
    await context.routeWebSocket(/.*/, (ws) => ws.close());
    const page = await context.newPage();
    page.on('console', (msg) => {
        if (msg.type() === 'error' || msg.type() === 'warning')
            problems.push(`console ${msg.type()}: ${msg.text()}`);
    });
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('request', (req) => {
        const u = req.url();
        if (u.split('#')[0] !== url && !u.startsWith('data:'))
            problems.push(`request to ${u} ${SELF_CONTAINED}`);
    });
    page.on('websocket', (ws) => problems.push(`websocket to ${ws.url()} ${SELF_CONTAINED}`));
    await page.goto(url, { waitUntil: 'load', timeout: 30000 });
    // Images decoded and two frames drawn, so that layout and late messages are in before measuring.
    await page.evaluate(() => Promise.all([...document.images].map((i) => i.decode().catch(() => {}))));
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    return { context, page };
}

// The checks on an open browser; returns the exit status.
async function checkIn(browser, opt) {
    const [report, shot] = opt.files;
    const problems = [];
    try {
        const url = pathToFileURL(path.resolve(report)).href;
        const { context, page } = await openReport(browser, url, problems);
        const sections = await page.evaluate(checkSections, opt.require);
        const pictures = await page.evaluate(checkPictures);
        const layout = await page.evaluate(checkLayout);
        problems.push(...sections.problems, ...pictures.problems, ...layout.problems);
        const png = await page.screenshot({ path: shot, fullPage: true, type: 'png' });
        const ink = await inkOf(context, png, layout.background);
        if (ink.ink < MIN_INK || ink.colours < MIN_COLOURS)
            problems.push(`screenshot is blank: ${(100 * ink.ink).toFixed(2)} % of pixels differ from ` +
                `the background rgb(${layout.background.join(',')}) (at least ${100 * MIN_INK} % needed), ` +
                `${ink.colours} colours (at least ${MIN_COLOURS} needed), ${shot}`);
        if (problems.length === 0) {
            const marked = sections.missing.join(', ');
            const missing = marked ? ` (marked missing: ${marked})` : '';
            console.log(`check_report: ok: ${sections.sections} sections${missing}, ` +
                `${pictures.figures} figures, ` +
                `${pictures.images} images, page ${ink.width}x${ink.height} px, ` +
                `${(100 * ink.ink).toFixed(1)} % non-background, ${ink.colours} colours, ${shot}`);
            return 0;
        }
    } catch (e) {
        problems.push(e.message.split('\n')[0]);
    }
    for (const p of problems) console.log(`check_report: ${p}`);
    return 1;
}

async function main() {
    const opt = parseArgs(process.argv.slice(2));
    const tools = loadTools(opt);
    if (!fs.existsSync(opt.files[0])) {
        console.log(`check_report: ${opt.files[0]}: no such file`);
        return 1;
    }
    let browser;
    try {
        // No name resolves: whatever slips past the routes cannot reach another machine.
        browser = await tools.chromium.launch({
            executablePath: tools.exe,
            headless: true,
            args: ['--no-sandbox', '--host-resolver-rules=MAP * ~NOTFOUND'],
        });
    } catch (e) {
        console.error(`check_report: chromium (${tools.exe}) did not start: ${e.message.split('\n')[0]}`);
        return 2;
    }
    try {
        return await checkIn(browser, opt);
    } finally {
        await browser.close();
    }
}

main().then((rc) => process.exit(rc), (e) => {
    console.error(`check_report: ${e.stack || e}`);
    process.exit(1);
});
