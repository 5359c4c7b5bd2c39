// Starts Swagger UI on /api/v1/docs (hubgate.web.api.docs) with hubgate's OpenAPI document.
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({ url: root.dataset.openapi, domNode: root, deepLinking: true });
})();
