// Command gox509 prints CertificateSigningRequests as Go's crypto/x509 reads them.
//
// It is the Go half of tests/test_go_differential.py: kube-apiserver and
// kube-controller-manager's signer read spec.request with encoding/pem and
// x509.ParseCertificateRequest, and the webhook must judge exactly what they read.
// Input: JSON lines {"id": ..., "request": <base64 of spec.request>} on stdin.
// Output: one JSON line per input line, in order, with the canonical view below.
package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
)

type input struct {
	ID      string `json:"id"`
	Request []byte `json:"request"`
	// PEM asks only for the blocks repeated pem.Decode calls find in Request.
	PEM bool `json:"pem,omitempty"`
}

type pemBlock struct {
	Type    string            `json:"type"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

type pemView struct {
	ID     string     `json:"id"`
	Blocks []pemBlock `json:"blocks"`
}

// pemBlocks is the loop every caller of encoding/pem writes: Decode until it finds no block.
func pemBlocks(in input) pemView {
	out := pemView{ID: in.ID, Blocks: []pemBlock{}}
	rest := in.Request
	for {
		block, next := pem.Decode(rest)
		if block == nil {
			return out
		}
		out.Blocks = append(out.Blocks, pemBlock{block.Type, block.Headers, hex.EncodeToString(block.Bytes)})
		rest = next
	}
}

type attribute struct {
	OID string `json:"oid"`
	// Value is the string Go read; nil when Go holds no string (a type it skips, or a
	// non-string value), with Type naming what it holds instead.
	Value *string `json:"value"`
	Type  string  `json:"type"`
}

type extension struct {
	OID      string `json:"oid"`
	Critical bool   `json:"critical"`
	Value    string `json:"value"`
}

type key struct {
	Algorithm string `json:"algorithm"`
	Bits      int    `json:"bits,omitempty"`
	Exponent  int    `json:"exponent,omitempty"`
	Curve     string `json:"curve,omitempty"`
	// DER is the SubjectPublicKeyInfo Go would write into a certificate for this key.
	DER string `json:"der"`
}

type view struct {
	ID                 string      `json:"id"`
	ParseError         string      `json:"parse_error,omitempty"`
	SignatureError     string      `json:"signature_error,omitempty"`
	DER                string      `json:"der,omitempty"`
	Subject            []attribute `json:"subject"`
	CommonName         string      `json:"common_name"`
	DNSNames           []string    `json:"dns_names"`
	EmailAddresses     []string    `json:"email_addresses"`
	IPAddresses        []string    `json:"ip_addresses"`
	URIs               []string    `json:"uris"`
	Extensions         []extension `json:"extensions"`
	Key                *key        `json:"key"`
	SignatureAlgorithm string      `json:"signature_algorithm"`
}

// parseCSR follows k8s.io/kubernetes pkg/apis/certificates/helpers.go ParseCSR: the first
// PEM block, which must be a CERTIFICATE REQUEST, then x509.ParseCertificateRequest.
func parseCSR(request []byte) (*x509.CertificateRequest, []byte, error) {
	block, _ := pem.Decode(request)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, nil, fmt.Errorf("PEM block type must be CERTIFICATE REQUEST")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	return csr, block.Bytes, err
}

func keyView(public any) *key {
	der, err := x509.MarshalPKIXPublicKey(public)
	encoded := ""
	if err == nil {
		encoded = hex.EncodeToString(der)
	}
	switch k := public.(type) {
	case *rsa.PublicKey:
		return &key{Algorithm: "rsa", Bits: k.N.BitLen(), Exponent: k.E, DER: encoded}
	case *ecdsa.PublicKey:
		return &key{Algorithm: "ecdsa", Bits: k.Curve.Params().BitSize, Curve: k.Curve.Params().Name, DER: encoded}
	case ed25519.PublicKey:
		return &key{Algorithm: "ed25519", DER: encoded}
	case nil:
		return nil
	default:
		return &key{Algorithm: fmt.Sprintf("%T", k), DER: encoded}
	}
}

func describe(in input) view {
	out := view{ID: in.ID}
	csr, der, err := parseCSR(in.Request)
	if err != nil {
		out.ParseError = err.Error()
		return out
	}
	out.DER = hex.EncodeToString(der)
	if err := csr.CheckSignature(); err != nil {
		out.SignatureError = err.Error()
	}
	out.Subject = []attribute{}
	for _, atv := range csr.Subject.Names {
		a := attribute{OID: atv.Type.String(), Type: fmt.Sprintf("%T", atv.Value)}
		if s, ok := atv.Value.(string); ok {
			a.Value = &s
		}
		out.Subject = append(out.Subject, a)
	}
	out.CommonName = csr.Subject.CommonName
	out.DNSNames = append([]string{}, csr.DNSNames...)
	out.EmailAddresses = append([]string{}, csr.EmailAddresses...)
	out.IPAddresses = []string{}
	for _, ip := range csr.IPAddresses {
		out.IPAddresses = append(out.IPAddresses, hex.EncodeToString(ip))
	}
	out.URIs = []string{}
	for _, uri := range csr.URIs {
		// What a Go signer writes into the certificate (x509.marshalSANs uses URL.String).
		out.URIs = append(out.URIs, uri.String())
	}
	out.Extensions = []extension{}
	for _, e := range csr.Extensions {
		out.Extensions = append(out.Extensions, extension{
			OID: e.Id.String(), Critical: e.Critical, Value: hex.EncodeToString(e.Value),
		})
	}
	out.Key = keyView(csr.PublicKey)
	if csr.SignatureAlgorithm != x509.UnknownSignatureAlgorithm {
		out.SignatureAlgorithm = csr.SignatureAlgorithm.String()
	}
	return out
}

func main() {
	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(make([]byte, 1<<20), 16<<20)
	writer := bufio.NewWriter(os.Stdout)
	defer writer.Flush()
	encoder := json.NewEncoder(writer)
	for scanner.Scan() {
		var in input
		if err := json.Unmarshal(scanner.Bytes(), &in); err != nil {
			fmt.Fprintln(os.Stderr, "gox509: bad input line:", err)
			os.Exit(2)
		}
		var result any = describe(in)
		if in.PEM {
			result = pemBlocks(in)
		}
		if err := encoder.Encode(result); err != nil {
			fmt.Fprintln(os.Stderr, "gox509:", err)
			os.Exit(2)
		}
	}
	if err := scanner.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "gox509:", err)
		os.Exit(2)
	}
}
