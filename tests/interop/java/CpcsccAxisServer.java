import java.io.File;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;

import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLServerSocketFactory;
import javax.net.ssl.SSLSocket;

import org.apache.axis.configuration.SimpleProvider;
import org.apache.axis.handlers.soap.SOAPService;
import org.apache.axis.transport.http.SimpleAxisServer;

/**
 * Apache Axis 1.4's SimpleAxisServer serving {@link CpcsccAxisService} over
 * mutual TLS, for the "our client against an Axis server" interop tests.
 *
 * SimpleAxisServer only speaks plain HTTP on whatever ServerSocket it is
 * given, so TLS comes from handing it a JSSE server socket: the keystore and
 * truststore are the standard {@code javax.net.ssl.*} system properties, and
 * client certificates are required. The service is deployed programmatically
 * as {@code cpcscc}, so its URL is {@code https://localhost:PORT/axis/services/cpcscc}.
 *
 * Usage: CpcsccAxisServer PORT STATE_DIR. Prints {@code ready=PORT} once it
 * accepts connections, then one line per event; runs until killed.
 */
public final class CpcsccAxisServer {
    /** Logs each client's certificate subject once its handshake completes. */
    private static final class MutualTlsServerSocket extends ServerSocket {
        private final SSLServerSocket inner;

        MutualTlsServerSocket(SSLServerSocket inner) throws IOException {
            this.inner = inner;
        }

        @Override
        public Socket accept() throws IOException {
            SSLSocket socket = (SSLSocket) inner.accept();
            socket.addHandshakeCompletedListener(done -> {
                try {
                    log("tls_client=" + done.getPeerPrincipal().getName().replace(',', ';'));
                } catch (SSLPeerUnverifiedException exc) {
                    log("tls_client=none");
                }
            });
            return socket;
        }

        @Override
        public int getLocalPort() { return inner.getLocalPort(); }

        @Override
        public void close() throws IOException { inner.close(); }

        @Override
        public boolean isClosed() { return inner.isClosed(); }
    }

    static synchronized void log(String line) {
        System.out.println(line);
        System.out.flush();
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: CpcsccAxisServer PORT STATE_DIR");
            System.exit(2);
        }
        int port = Integer.parseInt(args[0]);
        SimpleProvider config = new SimpleProvider();
        config.deployService("cpcscc",
                new SOAPService(new CpcsccAxisService(new File(args[1]), System.out)));

        SSLServerSocket tls = (SSLServerSocket) SSLServerSocketFactory.getDefault()
                .createServerSocket();
        tls.setNeedClientAuth(true);
        tls.setReuseAddress(true);
        tls.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 50);

        SimpleAxisServer server = new SimpleAxisServer();
        server.setMyConfig(config);
        server.setServerSocket(new MutualTlsServerSocket(tls));
        server.start(false);
        log("ready=" + tls.getLocalPort());
        Thread.currentThread().join();
    }
}
