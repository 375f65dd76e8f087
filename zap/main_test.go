package zap

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test closes its authenticators; none may leave a watcher goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
