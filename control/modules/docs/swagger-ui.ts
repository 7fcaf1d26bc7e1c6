import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * Swagger UI, served by us from the `swagger-ui-dist` package: no CDN, so the docs work offline
 * and under a CSP that allows only our own origin. The page has no inline script or style; the
 * initializer is a file of its own.
 */

/** Where the page and its assets live, under the API's `/v1` prefix. */
export const SWAGGER_PATH = '/swagger';
export const ASSETS_PATH = `${SWAGGER_PATH}/assets`;

/**
 * `default-src 'self'` and nothing inline. Swagger UI draws its icons as `data:` SVGs in its
 * stylesheet, hence `img-src data:`; everything else comes from this origin.
 */
export const SWAGGER_CSP = [
  "default-src 'self'",
  "img-src 'self' data:",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join('; ');

const DIST_DIR = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

/** The files the page loads, from the package, and nothing else (no path is taken from the URL). */
const DIST_FILES: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
  'favicon-16x16.png': 'image/png',
};

/** The page's own files. */
function ownFiles(specUrl: string): Record<string, { body: string; type: string }> {
  return {
    'init.js': {
      type: 'text/javascript; charset=utf-8',
      body: `window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({
    url: ${JSON.stringify(specUrl)},
    dom_id: '#swagger-ui',
    deepLinking: true,
    validatorUrl: null,
    docExpansion: 'list',
    defaultModelsExpandDepth: 0,
    presets: [SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
  });
});
`,
    },
    'page.css': {
      type: 'text/css; charset=utf-8',
      body: 'html { box-sizing: border-box; overflow-y: scroll; }\n*, *::before, *::after { box-sizing: inherit; }\nbody { margin: 0; background: #fafafa; }\n',
    },
  };
}

/** The HTML page: every URL in it is one of ours. */
export function swaggerPage(opts: { title: string; assetsUrl: string }): string {
  const a = opts.assetsUrl;
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${opts.title}</title>
  <link rel="stylesheet" href="${a}/swagger-ui.css">
  <link rel="stylesheet" href="${a}/page.css">
  <link rel="icon" type="image/png" sizes="32x32" href="${a}/favicon-32x32.png">
  <link rel="icon" type="image/png" sizes="16x16" href="${a}/favicon-16x16.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="${a}/swagger-ui-bundle.js"></script>
  <script src="${a}/init.js"></script>
</body>
</html>
`;
}

export interface Asset {
  body: Uint8Array<ArrayBuffer> | string;
  type: string;
}

/** Loads every asset once (about 2 MB), so serving one is a map lookup. */
export function loadSwaggerAssets(specUrl: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const [name, type] of Object.entries(DIST_FILES)) {
    assets.set(name, { body: new Uint8Array(readFileSync(join(DIST_DIR, name))), type });
  }
  for (const [name, file] of Object.entries(ownFiles(specUrl))) assets.set(name, file);
  return assets;
}
