// Command kubelet-certs drives the kubelet's own certificate code against a real API server for
// the end-to-end suite: TLS bootstrap (pkg/kubelet/certificate/bootstrap), client certificate
// renewal and the serving certificate (pkg/kubelet/certificate on client-go's certificate
// manager). It prints one JSON object on stdout saying what the kubelet code ended with; the
// kubelet code's own log lines (klog) go to stderr.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcertificate "k8s.io/client-go/util/certificate"
	"k8s.io/klog/v2"
	kubeletconfig "k8s.io/kubernetes/pkg/kubelet/apis/config"
	"k8s.io/kubernetes/pkg/kubelet/certificate"
	"k8s.io/kubernetes/pkg/kubelet/certificate/bootstrap"
)

// rotator is the client-go certificate manager's RotateCerts, which the kubelet's managers
// implement: one synchronous request-and-wait instead of waiting for the rotation deadline.
type rotator interface {
	RotateCerts() (bool, error)
}

type result struct {
	Command     string   `json:"command"`
	Rotated     bool     `json:"rotated"`
	Subject     string   `json:"subject,omitempty"`
	DNSNames    []string `json:"dnsNames,omitempty"`
	IPAddresses []string `json:"ipAddresses,omitempty"`
	NotBefore   string   `json:"notBefore,omitempty"`
	NotAfter    string   `json:"notAfter,omitempty"`
	Certificate string   `json:"certificate,omitempty"`
	User        string   `json:"user,omitempty"`
	Groups      []string `json:"groups,omitempty"`
	Node        string   `json:"node,omitempty"`
	Error       string   `json:"error,omitempty"`
}

func main() {
	klog.InitFlags(nil)
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: kubelet-certs bootstrap|renew-client|serving [flags]")
		os.Exit(2)
	}
	cmd := os.Args[1]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	bootstrapKubeconfig := fs.String("bootstrap-kubeconfig", "", "bootstrap-token kubeconfig (bootstrap)")
	kubeconfig := fs.String("kubeconfig", "", "the node's kubeconfig (written by bootstrap, read otherwise)")
	certDir := fs.String("cert-dir", "", "the kubelet's certificate directory")
	node := fs.String("node", "", "node name the kubelet code puts into its CSR")
	address := fs.String("address", "", "the node's InternalIP (serving)")
	hostname := fs.String("hostname", "", "the node's Hostname address (serving; default: --node)")
	timeout := fs.Duration("timeout", 2*time.Minute, "overall deadline")
	_ = fs.Parse(os.Args[2:])
	_ = flag.Set("logtostderr", "true")

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	// The certificate managers wait up to 15 minutes for a signature; the deadline is ours.
	time.AfterFunc(*timeout, func() {
		_ = json.NewEncoder(os.Stdout).Encode(result{Command: cmd, Error: fmt.Sprintf("no certificate within %s", *timeout)})
		os.Exit(1)
	})
	var res result
	var err error
	switch cmd {
	case "bootstrap":
		res, err = runBootstrap(ctx, *bootstrapKubeconfig, *kubeconfig, *certDir, *node, *address)
	case "renew-client":
		res, err = runRenewClient(*kubeconfig, *certDir, *node)
	case "serving":
		host := *hostname
		if host == "" {
			host = *node
		}
		res, err = runServing(*kubeconfig, *certDir, *node, host, *address)
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	res.Command = cmd
	if err != nil {
		res.Error = err.Error()
	}
	_ = json.NewEncoder(os.Stdout).Encode(res)
	if err != nil {
		os.Exit(1)
	}
}

func clientFor(kubeconfig string) (*clientset.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	return clientset.NewForConfig(cfg)
}

// runBootstrap is the kubelet's start: LoadClientCert turns the bootstrap token into a client
// certificate and a kubeconfig; the kubelet then registers its Node with that identity.
func runBootstrap(ctx context.Context, bootstrapPath, kubeconfigPath, certDir, node, address string) (result, error) {
	if err := bootstrap.LoadClientCert(ctx, kubeconfigPath, bootstrapPath, certDir, types.NodeName(node)); err != nil {
		return result{}, fmt.Errorf("LoadClientCert: %w", err)
	}
	res, err := describe(filepath.Join(certDir, "kubelet-client-current.pem"))
	if err != nil {
		return res, err
	}
	res.Rotated = true
	client, err := clientFor(kubeconfigPath)
	if err != nil {
		return res, err
	}
	review, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return res, fmt.Errorf("SelfSubjectReview with the new certificate: %w", err)
	}
	res.User, res.Groups = review.Status.UserInfo.Username, review.Status.UserInfo.Groups
	obj := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}
	if _, err := client.CoreV1().Nodes().Create(ctx, obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return res, fmt.Errorf("register Node %s: %w", node, err)
	}
	got, err := client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return res, fmt.Errorf("GET Node %s with the new certificate: %w", node, err)
	}
	if address != "" {
		got.Status.Addresses = addresses(node, address)
		if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
			return res, fmt.Errorf("update Node %s status: %w", node, err)
		}
	}
	res.Node = got.Name
	return res, nil
}

func addresses(node, address string) []corev1.NodeAddress {
	return []corev1.NodeAddress{
		{Type: corev1.NodeHostName, Address: node},
		{Type: corev1.NodeInternalIP, Address: address},
	}
}

// runRenewClient is the kubelet's client certificate rotation: the manager authenticates with
// the current certificate in certDir and asks for a new one for `node`.
func runRenewClient(kubeconfigPath, certDir, node string) (result, error) {
	clientsetFn := func(*tls.Certificate) (clientset.Interface, error) { return clientFor(kubeconfigPath) }
	m, err := certificate.NewKubeletClientCertificateManager(certDir, types.NodeName(node), nil, nil, "", "", clientsetFn)
	if err != nil {
		return result{}, err
	}
	return rotate(m, filepath.Join(certDir, "kubelet-client-current.pem"))
}

// runServing is the kubelet's serving certificate manager; the CSR waits for an approver.
func runServing(kubeconfigPath, certDir, node, hostname, address string) (result, error) {
	client, err := clientFor(kubeconfigPath)
	if err != nil {
		return result{}, err
	}
	getAddresses := func() []corev1.NodeAddress { return addresses(hostname, address) }
	m, err := certificate.NewKubeletServerCertificateManager(client, &kubeletconfig.KubeletConfiguration{}, types.NodeName(node), getAddresses, certDir)
	if err != nil {
		return result{}, err
	}
	return rotate(m, filepath.Join(certDir, "kubelet-server-current.pem"))
}

func rotate(m clientcertificate.Manager, current string) (result, error) {
	r, ok := m.(rotator)
	if !ok {
		return result{}, errors.New("the certificate manager has no RotateCerts")
	}
	rotated, err := r.RotateCerts()
	if err != nil {
		return result{}, err
	}
	if !rotated {
		return result{}, errors.New("the certificate manager did not obtain a certificate (its log is on stderr)")
	}
	res, err := describe(current)
	res.Rotated = true
	return res, err
}

func describe(path string) (result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return result{}, err
	}
	var res result
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return res, err
		}
		res.Subject = cert.Subject.String()
		res.DNSNames = cert.DNSNames
		for _, ip := range cert.IPAddresses {
			res.IPAddresses = append(res.IPAddresses, ip.String())
		}
		res.NotBefore = cert.NotBefore.UTC().Format(time.RFC3339)
		res.NotAfter = cert.NotAfter.UTC().Format(time.RFC3339)
		res.Certificate = string(pem.EncodeToMemory(block))
		return res, nil
	}
	return res, fmt.Errorf("%s: no certificate", path)
}
