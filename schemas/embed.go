// Package schemas embeds Greenroom's contracts: the PostgreSQL migrations
// (db/), one JSON Schema per event type (events/) and the HTTP API
// (api/openapi.yaml). Code reads them from here so that the files a human
// reviews are exactly the files the services enforce.
package schemas

import "embed"

// Migrations holds the goose SQL migrations, in db/.
//
//go:embed db/*.sql
var Migrations embed.FS

// Events holds one JSON Schema per event type, in events/, named
// <type without the greenroom. prefix>.json (session.requested.json).
//
//go:embed events/*.json
var Events embed.FS

// OpenAPI is the HTTP API description of the config service.
//
//go:embed api/openapi.yaml
var OpenAPI []byte
