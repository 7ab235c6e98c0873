// Swagger UI's initializer, in a file of its own because the page's Content-Security-Policy
// allows no inline script. It shows the document this server serves.
window.addEventListener("DOMContentLoaded", () => {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null, // the default sends the document to a third-party validator
  });
});
