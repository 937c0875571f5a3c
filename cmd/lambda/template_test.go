package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/intrinsics"
)

const templatePath = "../../template.yaml"

// rawTemplate is template.yaml with its intrinsic functions left as they are
// ({"Ref": ...}, {"Fn::GetAtt": [...]}), for checks the typed model cannot
// make: goformation's Kinesis event type lacks most event source mapping
// properties, and it resolves only Refs to parameters.
func rawTemplate(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	js, err := intrinsics.ProcessYAML(b, &intrinsics.ProcessorOptions{NoProcess: true})
	if err != nil {
		t.Fatalf("template.yaml: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func path(t *testing.T, v any, keys ...string) any {
	t.Helper()
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: not an object at %q", strings.Join(keys, "."), k)
		}
		v, ok = m[k]
		if !ok {
			t.Fatalf("%s: no %q", strings.Join(keys, "."), k)
		}
	}
	return v
}

func TestTemplate(t *testing.T) {
	tmpl, err := goformation.Open(templatePath)
	if err != nil {
		t.Fatalf("goformation cannot parse template.yaml: %v", err)
	}
	raw := rawTemplate(t)

	wantTypes := map[string]string{
		"InputStream":          "AWS::Kinesis::Stream",
		"OutputStream":         "AWS::Kinesis::Stream",
		"ConsumerFailureQueue": "AWS::SQS::Queue",
		"ProducerQueue":        "AWS::SQS::Queue",
		"ConsumerRole":         "AWS::IAM::Role",
		"ProducerRole":         "AWS::IAM::Role",
		"ConsumerFunction":     "AWS::Serverless::Function",
		"ProducerFunction":     "AWS::Serverless::Function",
	}
	for name, typ := range wantTypes {
		r, ok := tmpl.Resources[name]
		if !ok {
			t.Errorf("resource %s missing", name)
			continue
		}
		if got := r.AWSCloudFormationType(); got != typ {
			t.Errorf("%s is %s, want %s", name, got, typ)
		}
	}
	if c := path(t, raw, "Resources", "OutputStream", "Condition"); c != "HasOutputStream" {
		t.Errorf("OutputStream condition %v, want HasOutputStream", c)
	}
	if _, ok := tmpl.Conditions["HasOutputStream"]; !ok {
		t.Error("condition HasOutputStream missing")
	}
	for _, p := range []string{"HandlerPlugin", "SerializerPlugin", "AggregatorPlugin", "Processor", "BatchSize",
		"MaxBatchingWindowSeconds", "ParallelizationFactor", "MaxRetryAttempts", "MaxRecordAgeSeconds", "CreateOutputStream"} {
		if _, ok := tmpl.Parameters[p]; !ok {
			t.Errorf("parameter %s missing", p)
		}
	}

	makefile, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	fns := tmpl.GetAllServerlessFunctionResources()
	if len(fns) != 2 {
		t.Errorf("%d functions, want 2 (consumer and producer)", len(fns))
	}
	for name, fn := range fns {
		t.Run(name, func(t *testing.T) {
			if fn.Handler == nil || !slices.Contains(knownHandlers, *fn.Handler) {
				h := "<none>"
				if fn.Handler != nil {
					h = *fn.Handler
				}
				t.Errorf("Handler %q is not one the bootstrap knows (%v)", h, knownHandlers)
			}
			if fn.Runtime == nil || *fn.Runtime != "provided.al2023" {
				if g, ok := tmpl.Globals["Function"]; !ok || path(t, raw, "Globals", "Function", "Runtime") != "provided.al2023" {
					t.Errorf("runtime %v (globals %v), want provided.al2023", fn.Runtime, g)
				}
			}
			if a := path(t, raw, "Globals", "Function", "Architectures"); !slices.Equal(toStrings(a), []string{"arm64"}) && !slices.Equal(fn.Architectures, []string{"arm64"}) {
				t.Errorf("architectures %v, want [arm64]", a)
			}
			if bm := fn.AWSCloudFormationMetadata["BuildMethod"]; bm != "makefile" {
				t.Errorf("Metadata.BuildMethod %v, want makefile", bm)
			}
			target := "build-" + name
			if !regexp.MustCompile(`(?m)^[^#\n]*\b` + regexp.QuoteMeta(target) + `\b[^=\n]*:`).Match(makefile) {
				t.Errorf("the Makefile has no target %s (sam build runs `make %s`)", target, target)
			}
			if role := path(t, raw, "Resources", name, "Properties", "Role", "Fn::GetAtt"); getAtt(role) != strings.TrimSuffix(name, "Function")+"Role.Arn" {
				t.Errorf("Role %v: want the template's own least-privilege role", role)
			}
		})
	}

	consumer := fns["ConsumerFunction"]
	if consumer == nil || *consumer.Handler != handlerConsumer {
		t.Fatalf("ConsumerFunction must run the %s handler", handlerConsumer)
	}
	ev, ok := consumer.Events["Input"]
	if !ok || ev.Type != "Kinesis" {
		t.Fatalf("consumer event Input: %+v, want a Kinesis event", ev)
	}
	props := path(t, raw, "Resources", "ConsumerFunction", "Properties", "Events", "Input", "Properties").(map[string]any)
	refs := map[string]string{
		"StartingPosition":               "StartingPosition",
		"BatchSize":                      "BatchSize",
		"MaximumBatchingWindowInSeconds": "MaxBatchingWindowSeconds",
		"ParallelizationFactor":          "ParallelizationFactor",
		"MaximumRetryAttempts":           "MaxRetryAttempts",
		"MaximumRecordAgeInSeconds":      "MaxRecordAgeSeconds",
	}
	for prop, param := range refs {
		if got := path(t, props, prop, "Ref"); got != param {
			t.Errorf("Kinesis event %s = Ref %v, want Ref %s", prop, got, param)
		}
	}
	if got := path(t, props, "Stream", "Fn::GetAtt"); getAtt(got) != "InputStream.Arn" {
		t.Errorf("Kinesis event Stream %v, want InputStream.Arn", got)
	}
	if props["BisectBatchOnFunctionError"] != true {
		t.Errorf("BisectBatchOnFunctionError %v, want true", props["BisectBatchOnFunctionError"])
	}
	if got := toStrings(props["FunctionResponseTypes"]); !slices.Equal(got, []string{"ReportBatchItemFailures"}) {
		t.Errorf("FunctionResponseTypes %v, want [ReportBatchItemFailures]", got)
	}
	if got := path(t, props, "DestinationConfig", "OnFailure", "Type"); got != "SQS" {
		t.Errorf("on-failure destination type %v, want SQS", got)
	}
	if got := path(t, props, "DestinationConfig", "OnFailure", "Destination", "Fn::GetAtt"); getAtt(got) != "ConsumerFailureQueue.Arn" {
		t.Errorf("on-failure destination %v, want ConsumerFailureQueue.Arn", got)
	}
	// Parameter defaults are valid event source mapping values.
	for _, c := range []struct {
		param    string
		min, max float64
	}{{"BatchSize", 1, 10000}, {"MaxBatchingWindowSeconds", 0, 300}, {"ParallelizationFactor", 1, 10}, {"MaxRetryAttempts", -1, 10000}, {"MaxRecordAgeSeconds", -1, 604800}} {
		d, ok := tmpl.Parameters[c.param].Default.(float64)
		if !ok || d < c.min || d > c.max {
			t.Errorf("parameter %s default %v outside [%v, %v]", c.param, tmpl.Parameters[c.param].Default, c.min, c.max)
		}
	}

	producer := fns["ProducerFunction"]
	if producer == nil || *producer.Handler != handlerProducer {
		t.Fatalf("ProducerFunction must run the %s handler", handlerProducer)
	}
	var types []string
	for _, e := range producer.Events {
		types = append(types, e.Type)
	}
	slices.Sort(types)
	if !slices.Equal(types, []string{"Api", "SQS"}) {
		t.Errorf("producer events %v, want Api and SQS", types)
	}
	if got := toStrings(path(t, raw, "Resources", "ProducerFunction", "Properties", "Events", "Queue", "Properties", "FunctionResponseTypes")); !slices.Equal(got, []string{"ReportBatchItemFailures"}) {
		t.Errorf("producer SQS FunctionResponseTypes %v, want [ReportBatchItemFailures]", got)
	}
	if got := path(t, raw, "Resources", "ProducerFunction", "Properties", "Environment", "Variables", "SHARDWORK_STREAM", "Ref"); got != "InputStream" {
		t.Errorf("producer SHARDWORK_STREAM = Ref %v, want Ref InputStream", got)
	}

	// Least privilege: no statement grants a wildcard action, and only
	// kinesis:ListStreams (which has no resource-level permission) may name
	// every resource.
	for _, role := range []string{"ConsumerRole", "ProducerRole"} {
		js, _ := json.Marshal(path(t, raw, "Resources", role, "Properties", "Policies"))
		if strings.Contains(string(js), `:*"`) && strings.Contains(string(js), `"kinesis:*"`) {
			t.Errorf("%s grants kinesis:*", role)
		}
		var policies []struct {
			PolicyDocument struct {
				Statement []json.RawMessage
			}
		}
		if err := json.Unmarshal(js, &policies); err != nil {
			t.Fatal(err)
		}
		for _, p := range policies {
			for _, st := range p.PolicyDocument.Statement {
				var s struct {
					Action   any
					Resource any
				}
				if json.Unmarshal(st, &s) != nil || s.Action == nil {
					continue // an Fn::If around a statement
				}
				for _, a := range toStrings(s.Action) {
					if strings.HasSuffix(a, "*") {
						t.Errorf("%s grants wildcard action %s", role, a)
					}
				}
				if s.Resource == "*" && !slices.Equal(toStrings(s.Action), []string{"kinesis:ListStreams"}) {
					t.Errorf("%s grants %v on every resource", role, s.Action)
				}
			}
		}
	}
}

// getAtt gives a Fn::GetAtt argument as "Resource.Attribute", from either
// the short (string) or the long (list) form.
func getAtt(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return strings.Join(toStrings(v), ".")
}

func toStrings(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, _ := e.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}

func TestTemplateBuildTargetsWriteBootstrap(t *testing.T) {
	mk, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mk), "-o $(ARTIFACTS_DIR)/bootstrap ./cmd/lambda") || !strings.Contains(string(mk), "lambda.norpc") {
		t.Error("the SAM build targets must write ./cmd/lambda built with -tags lambda.norpc to $(ARTIFACTS_DIR)/bootstrap")
	}
}
