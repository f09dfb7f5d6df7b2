import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.security.KeyStore;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.stream.Stream;

import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.TrustManagerFactory;
import javax.xml.ws.Endpoint;
import javax.xml.ws.soap.SOAPBinding;

import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsParameters;
import com.sun.net.httpserver.HttpsServer;

/**
 * An independent IEC 62325-504 server for our interop tests: JAX-WS RI endpoints
 * ({@link EmeService}) published on the JDK's HttpsServer with mutual TLS.
 *
 * <pre>
 * EmeServer --outbox DIR --inbox DIR --tls-keystore P12 --truststore P12
 *           [--port 0] [--password changeit] [--sign-keystore P12|none]
 *           [--put-signature required|optional] [--owner ID] [--state FILE] [--dump DIR]
 * </pre>
 *
 * Serves SOAP 1.1 at /ServiceEME and SOAP 1.2 at /ServiceEME12 (a JAX-WS endpoint has
 * one binding). Files in the outbox are the published messages: a file directly in it
 * has Type {@code --default-type}, a file in a sub-folder has the sub-folder's name as
 * its Type. Codes are assigned in (mtime, name) order the first time a file is seen,
 * grow monotonically and are kept in the --state file across restarts.
 * Prints {@code ready=PORT}, then one {@code key=value} line per event.
 */
public final class EmeServer {
    /** One published message. */
    static final class Entry {
        final long code;
        final String name;
        final String type;
        final Path path;
        final Instant time;

        Entry(long code, String name, String type, Path path, Instant time) {
            this.code = code;
            this.name = name;
            this.type = type;
            this.path = path;
            this.time = time;
        }
    }

    /** The outbox folder plus its persistent name -> code table. */
    static final class Store {
        private final Path outbox;
        private final Path state;
        private final String defaultType;
        private final Map<String, Long> codes = new LinkedHashMap<>();
        private long last;

        Store(Path outbox, Path state, String defaultType) throws IOException {
            this.outbox = outbox;
            this.state = state;
            this.defaultType = defaultType;
            if (state != null && Files.exists(state)) {
                for (String line : Files.readAllLines(state, StandardCharsets.UTF_8)) {
                    String[] parts = line.split("\t", 2);
                    if (parts.length == 2) {
                        long code = Long.parseLong(parts[0]);
                        codes.put(parts[1], code);
                        last = Math.max(last, code);
                    }
                }
            }
        }

        synchronized List<Entry> scan() throws IOException {
            List<Path> files = new ArrayList<>();
            try (Stream<Path> walk = Files.walk(outbox, 2)) {
                walk.filter(Files::isRegularFile)
                        .filter(p -> !p.getFileName().toString().startsWith("."))
                        .forEach(files::add);
            }
            Map<Path, Instant> times = new HashMap<>();
            for (Path p : files) {
                times.put(p, Files.getLastModifiedTime(p).toInstant());
            }
            files.sort(Comparator.comparing((Path p) -> times.get(p)).thenComparing(Path::toString));
            List<Entry> entries = new ArrayList<>();
            for (Path p : files) {
                String key = outbox.relativize(p).toString();
                Long code = codes.get(key);
                if (code == null) {
                    code = ++last;
                    codes.put(key, code);
                    if (state != null) {
                        Files.write(state, (code + "\t" + key + "\n").getBytes(StandardCharsets.UTF_8),
                                StandardOpenOption.CREATE, StandardOpenOption.APPEND, StandardOpenOption.SYNC);
                    }
                }
                String type = p.getParent().equals(outbox) ? defaultType : p.getParent().getFileName().toString();
                entries.add(new Entry(code, p.getFileName().toString(), type, p, times.get(p)));
            }
            entries.sort(Comparator.comparingLong(e -> e.code));
            return entries;
        }
    }

    /** What the service needs to know, from the command line. */
    static final class Settings {
        Store store;
        Path inbox;
        String owner = "EME-JAVA";
        EmeXml.SigningKey signer;
        String putSignature = "optional";
        Path dumpDir;
    }

    static synchronized void event(String key, String value) {
        System.out.println(key + "=" + value.replace('\n', ' '));
        System.out.flush();
    }

    private static KeyStore load(String path, char[] password) throws Exception {
        KeyStore store = KeyStore.getInstance("PKCS12");
        try (InputStream in = new FileInputStream(path)) {
            store.load(in, password);
        }
        return store;
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> opts = new HashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) {
            if (!args[i].startsWith("--")) {
                throw new IllegalArgumentException("expected --option value, got " + args[i]);
            }
            opts.put(args[i].substring(2), args[i + 1]);
        }
        char[] password = opts.getOrDefault("password", "changeit").toCharArray();
        Settings settings = new Settings();
        String state = opts.get("state");
        settings.store = new Store(Paths.get(opts.get("outbox")), state == null ? null : Paths.get(state),
                opts.getOrDefault("default-type", "CUR"));
        settings.inbox = Paths.get(opts.get("inbox"));
        settings.owner = opts.getOrDefault("owner", settings.owner);
        settings.putSignature = opts.getOrDefault("put-signature", settings.putSignature);
        String sign = opts.getOrDefault("sign-keystore", opts.get("tls-keystore"));
        if (!"none".equals(sign)) {
            settings.signer = new EmeXml.SigningKey(sign, password);
        }
        if (opts.containsKey("dump")) {
            settings.dumpDir = Paths.get(opts.get("dump"));
        }

        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(load(opts.get("tls-keystore"), password), password);
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(load(opts.get("truststore"), password));
        SSLContext tls = SSLContext.getInstance("TLS");
        tls.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);

        int port = Integer.parseInt(opts.getOrDefault("port", "0"));
        HttpsServer server = HttpsServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 50);
        server.setHttpsConfigurator(new HttpsConfigurator(tls) {
            @Override
            public void configure(HttpsParameters params) {
                SSLParameters ssl = getSSLContext().getDefaultSSLParameters();
                // Mutual TLS as on the real network: no client certificate, no handshake.
                ssl.setNeedClientAuth(true);
                params.setSSLParameters(ssl);
            }
        });
        server.setExecutor(Executors.newFixedThreadPool(8));
        Endpoint.create(SOAPBinding.SOAP11HTTP_BINDING, new EmeService(settings, false))
                .publish(server.createContext("/ServiceEME"));
        Endpoint.create(SOAPBinding.SOAP12HTTP_BINDING, new EmeService(settings, true))
                .publish(server.createContext("/ServiceEME12"));
        server.start();
        event("ready", Integer.toString(server.getAddress().getPort()));
    }
}
