import javax.xml.namespace.QName;

import org.apache.axis.description.ElementDesc;
import org.apache.axis.description.TypeDesc;
import org.apache.axis.encoding.Deserializer;
import org.apache.axis.encoding.Serializer;
import org.apache.axis.encoding.ser.BeanDeserializer;
import org.apache.axis.encoding.ser.BeanSerializer;

/**
 * The CPCSCC {@code Fichero} complex type (Nombre, Checksum), written the way
 * WSDL2Java generates beans: a static TypeDesc maps the Java properties to the
 * protocol's capitalised element names in the cp namespace. Without it Axis
 * would emit lower-case {@code nombre}/{@code checksum}, which no real
 * generated client does.
 */
public class Fichero implements java.io.Serializable {
    public static final String NS = "http://simel.ree.es/cpcscc/2003/Mensajes";
    public static final QName XML_TYPE = new QName(NS, "Fichero");
    private static final QName XSD_STRING =
            new QName("http://www.w3.org/2001/XMLSchema", "string");

    private String nombre;
    private String checksum;

    public Fichero() {}

    public Fichero(String nombre, String checksum) {
        this.nombre = nombre;
        this.checksum = checksum;
    }

    public String getNombre() { return nombre; }
    public void setNombre(String nombre) { this.nombre = nombre; }
    public String getChecksum() { return checksum; }
    public void setChecksum(String checksum) { this.checksum = checksum; }

    private static final TypeDesc TYPE_DESC = new TypeDesc(Fichero.class, true);

    static {
        TYPE_DESC.setXmlType(XML_TYPE);
        TYPE_DESC.addFieldDesc(field("nombre", "Nombre"));
        TYPE_DESC.addFieldDesc(field("checksum", "Checksum"));
    }

    private static ElementDesc field(String javaName, String xmlName) {
        ElementDesc desc = new ElementDesc();
        desc.setFieldName(javaName);
        desc.setXmlName(new QName(NS, xmlName));
        desc.setXmlType(XSD_STRING);
        desc.setNillable(false);
        return desc;
    }

    public static TypeDesc getTypeDesc() { return TYPE_DESC; }

    public static Serializer getSerializer(String mechType, Class<?> javaType, QName xmlType) {
        return new BeanSerializer(javaType, xmlType, TYPE_DESC);
    }

    public static Deserializer getDeserializer(String mechType, Class<?> javaType, QName xmlType) {
        return new BeanDeserializer(javaType, xmlType, TYPE_DESC);
    }
}
