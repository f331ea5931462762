package serve

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3 document of the API; openapi_test.go checks it
// against the handlers' real answers.
//
//go:embed openapi.json
var openAPI []byte

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPI)
}
