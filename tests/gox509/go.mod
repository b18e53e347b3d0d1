module csr-webhook.invalid/gox509

go 1.22
