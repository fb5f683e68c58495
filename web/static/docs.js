// Starts Swagger UI on /docs. A file rather than the usual inline script: the pages' Content-Security-Policy
// runs scripts from this server only. No validator badge, which would load an image from elsewhere.
"use strict";
const root = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  domNode: root,
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
