// Package domain holds what the config service's API is made of — zones,
// pools, agents, servers, workspaces, groups, users, web filter policies,
// staging configs, sessions, violations and API keys as operators see them
// (references by name) — and the rules about them that need no I/O: what a
// valid request body is (container settings as libs/containerconfig
// defines them), the $request_host$ rule for staged sessions, that a staging
// config grants by default what a group does, the bounds of a session
// request's wait, when two session requests are the same request,
// whether a signed-in user may reach a session, and what an API key's
// scopes grant.
//
// Request bodies are decoded into the …Create and …Update types, whose
// fields are Optional so that absent, null and a value can be told apart;
// Validate returns one FieldError per problem, in the order of the API's
// schema, and the first one is what the client is told about first.
package domain
