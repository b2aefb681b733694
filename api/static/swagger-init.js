// Starts the Swagger UI on /docs (api/docs.py): a file, not an inline script, so the page's CSP
// can allow scripts from this service only. No validator badge: nothing leaves the service.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
