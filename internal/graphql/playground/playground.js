// Starts GraphiQL against this server's /graphql: queries and mutations over POST,
// subscriptions over WebSocket (graphql-transport-ws). Sign in with the login mutation and
// put {"Authorization": "Bearer <accessToken>"} in the Headers tab.
(function () {
  var ws = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/graphql';
  var fetcher = GraphiQL.createFetcher({ url: location.origin + '/graphql', subscriptionUrl: ws });
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(React.createElement(GraphiQL, {
    fetcher: fetcher,
    defaultQuery: '# Plaza GraphQL. Try:\n{\n  products(first: 5) {\n    edges { node { id name priceCents currency } }\n    pageInfo { hasNextPage endCursor }\n  }\n}\n',
  }));
})();
