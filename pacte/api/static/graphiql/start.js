// pacte's GraphiQL page: a file of its own, since the Content-Security-Policy allows
// no inline script. Requests go to this server's /graphql; add the Authorization and
// X-Purpose headers in the Headers tab.
(function () {
  "use strict";
  var fetcher = GraphiQL.createFetcher({ url: window.location.origin + "/graphql" });
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(React.createElement(GraphiQL, {
    fetcher: fetcher,
    defaultEditorToolsVisibility: "headers",
    headers: JSON.stringify({ "Authorization": "Bearer <api key>", "X-Purpose": "service" },
                            null, 2),
    shouldPersistHeaders: false
  }));
})();
