// Swagger UI for /docs, from the assets Reelforge serves itself.
const root = document.getElementById("swagger-ui");
window.SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: true,
});
