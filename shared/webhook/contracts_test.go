package webhook_test

import (
	"strings"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/testkit/contractdoc"
	"github.com/acme/unified-customer-service/shared/webhook"
)

// TestContractsExample checks the worked example of docs/contracts.md
// (section 2.2): its header is Sign of its body, and Verify accepts it.
func TestContractsExample(t *testing.T) {
	block := contractdoc.CodeBlock(t, contractdoc.After(t, contractdoc.Read(t), "webhook-example: checked by shared/webhook/contracts_test.go"), "text")
	lines := strings.Split(strings.TrimSpace(block), "\n")
	if len(lines) != 2 {
		t.Fatalf("the example has %d lines, want the body and the header", len(lines))
	}
	body, header := []byte(lines[0]), strings.TrimPrefix(lines[1], webhook.HeaderSignature+": ")
	at := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	if got := webhook.Sign([]byte("whsec-example"), at, body); got != header {
		t.Errorf("Sign = %s, the contract says %s", got, header)
	}
	if _, err := webhook.Verify(header, body, [][]byte{[]byte("whsec-example")}, at); err != nil {
		t.Errorf("Verify of the contract's example: %v", err)
	}
}
